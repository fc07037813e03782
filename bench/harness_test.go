package bench

import (
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Env is what a comparison provides its contenders: the brokers they share.
type Env struct {
	NATS  string // nats://host:port of an embedded nats-server with JetStream
	Redis string // host:port of a redis-server
}

type contender struct {
	name string
	run  func(b *testing.B, env Env)
}

var (
	regMu       sync.Mutex
	comparisons = map[string][]contender{}
)

// register adds a contender to a comparison (from init functions).
func register(comparison, name string, run func(b *testing.B, env Env)) {
	regMu.Lock()
	defer regMu.Unlock()
	comparisons[comparison] = append(comparisons[comparison], contender{name, run})
}

// compare runs every contender of comparison as a sub-benchmark, catga
// first, the others by name.
func compare(b *testing.B, comparison string, env Env) {
	regMu.Lock()
	cs := append([]contender(nil), comparisons[comparison]...)
	regMu.Unlock()
	if len(cs) < 2 {
		b.Fatalf("comparison %s has %d contenders", comparison, len(cs))
	}
	sort.Slice(cs, func(i, j int) bool {
		if (cs[i].name == "catga") != (cs[j].name == "catga") {
			return cs[i].name == "catga"
		}
		return cs[i].name < cs[j].name
	})
	for _, c := range cs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c.run(b, env)
		})
	}
}

// Publishers is how many goroutines publish in the broker comparisons.
const Publishers = 16

// PublishParallel calls publish(i) for i in [0, b.N) from Publishers
// goroutines and returns when all returned.
func PublishParallel(b *testing.B, publish func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := publish(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// WaitCount waits until n reaches want, failing after a minute.
func WaitCount(b *testing.B, n *atomic.Int64, want int) {
	deadline := time.Now().Add(time.Minute)
	for n.Load() < int64(want) {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", n.Load(), want)
		}
		time.Sleep(50 * time.Microsecond)
	}
}
