package main

import (
	"strings"
	"testing"
)

func TestRun_TableOfMedianRatios(t *testing.T) {
	in := `goos: linux
BenchmarkInProcessSend/catga-2   	 1000	        12.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkInProcessSend/catga-2   	 1000	        10.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkInProcessSend/catga-2   	 1000	        99.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkInProcessSend/direct-2  	 1000	         2.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkNATSEvents/catga-2      	 1000	     40000 ns/op	   10000 B/op	     114 allocs/op
BenchmarkNATSEvents/raw-2        	 1000	     32000 ns/op	    5000 B/op	      77 allocs/op
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| InProcessSend | 12.0 | direct | 2.00 | 6.00 | 0 / 0 | within 8x of a direct call, 0 allocs | yes |",
		"| NATSEvents | 40000 | raw | 32000 | 1.25 | 114 / 77 | at least 0.9x raw nats.go jetstream throughput | **no** |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, got)
		}
	}
}
