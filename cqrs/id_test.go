package cqrs_test

import (
	"sort"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/catga-go/catga/cqrs"
)

func TestNewID_UniqueSortableULIDs(t *testing.T) {
	const per, workers = 10000, 8
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				ids[w] = append(ids[w], cqrs.NewID())
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, list := range ids {
		if !sort.StringsAreSorted(list) {
			t.Fatal("ids of one goroutine are not increasing")
		}
		for _, id := range list {
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			if _, err := ulid.ParseStrict(id); err != nil {
				t.Fatalf("%s is not a ULID: %v", id, err)
			}
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = cqrs.NewID()
		}
	})
}

func BenchmarkULIDMake(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = ulid.Make().String()
		}
	})
}
