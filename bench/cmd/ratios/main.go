// Command ratios reads "go test -bench" output (several -count runs) on
// stdin and writes a Markdown table: for each comparison, Catga's median
// time per op over each contender's (or the median of the metric the
// comparison is judged by, such as a latency percentile), allocations, and
// the target in BENCHMARKS.md it is held to.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// target is a bound on catga/contender: time (a ratio), or allocations.
type target struct {
	maxRatio  float64 // 0: none
	maxAllocs float64 // -1: none
	text      string
}

var targets = map[string]target{
	"InProcessSend/direct":         {8, 0, "within 8x of a direct call, 0 allocs"},
	"InProcessSender/direct":       {2, 0, "within 2x of a direct call, 0 allocs"},
	"InProcessSendDefaults/direct": {0, 2, "default behaviors: at most 2 allocs"},
	"InProcessAsk/direct":          {8, 0, "within 8x of a direct call, 0 allocs"},
	"InProcessPublish1/eventbus":   {1, -1, "faster than EventBus"},
	"InProcessPublish3/eventbus":   {1, -1, "faster than EventBus"},
	"InProcessSend/watermill":      {1, -1, "faster than Watermill CQRS"},
	"MemoryEvent/watermill":        {0.1, -1, "10x faster than Watermill CQRS over gochannel"},
	"NATSEvents/raw":               {1.05, -1, "at least 0.95x raw nats.go jetstream throughput"},
	"NATSEvents/watermill":         {0.77, -1, "1.3x watermill-nats throughput"},
	"RedisEvents/raw":              {1.05, -1, "at least 0.95x raw go-redis throughput"},
	"RedisEvents/watermill":        {1, -1, "ahead of watermill-redisstream"},
	"Outbox/watermill-sql":         {0.5, -1, "at least 2x Watermill's outbox throughput"},
	"NATSRequest1/raw":             {1.15, -1, "within 1.15x of raw nats.Request"},
	"NATSRequest16/raw":            {1.2, -1, "within 1.2x of raw nats.Request"},
	"HTTPCreateOrder/raw":          {0, 200, "at most 200 allocs"},
	"NATSPublishBatch/raw":         {1 / 0.9, -1, "at least 0.9x raw asynchronous publish throughput"},
	"RedisPublishBatch/raw":        {1 / 0.9, -1, "at least 0.9x raw pipelined XADD throughput"},
}

// metrics names the comparisons judged by a metric of their own rather
// than ns/op: at a fixed rate, time per op is the rate's.
var metrics = map[string]string{
	"OutboxLatency": "p99-ms",
}

// line is one result: the comparison, the contender (the GOMAXPROCS suffix
// left off), the iterations, then value-unit pairs.
var line = regexp.MustCompile(`^Benchmark(\w+)/([\w.-]+?)(?:-\d+)?\s+\d+\s+(\S.*)$`)

// result is a contender's values of each unit, one per run.
type result map[string][]float64

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	res := map[string]map[string]result{}
	var order []string
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		cmp, who := m[1], m[2]
		if res[cmp] == nil {
			res[cmp] = map[string]result{}
			order = append(order, cmp)
		}
		r := res[cmp][who]
		if r == nil {
			r = result{}
			res[cmp][who] = r
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				r[f[i+1]] = append(r[f[i+1]], v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "| comparison | catga ns/op | contender | ns/op | catga / contender | spread (per run) | allocs catga / contender | target | met |")
	fmt.Fprintln(out, "|---|---:|---|---:|---:|---:|---:|---|---|")
	for _, cmp := range order {
		c := res[cmp]["catga"]
		if c == nil {
			continue
		}
		var others []string
		for who := range res[cmp] {
			if who != "catga" {
				others = append(others, who)
			}
		}
		sort.Strings(others)
		unit := metrics[cmp]
		if unit == "" {
			unit = "ns/op"
		}
		for _, who := range others {
			o := res[cmp][who]
			cv, ov := median(c[unit]), median(o[unit])
			ratio := cv / ov
			lo, hi := spread(c[unit], o[unit])
			t, ok := targets[cmp+"/"+who]
			met := ""
			if ok {
				met = verdict(t, lo, hi, median(c["allocs/op"]))
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %.2f | %.2f-%.2f | %s / %s | %s | %s |\n", cmp, value(cv, unit), who, value(ov, unit), ratio, lo, hi,
				count(median(c["allocs/op"])), count(median(o["allocs/op"])), t.text, met)
		}
	}
	return nil
}

// spread is the lowest and highest catga/contender ratio of one run:
// "go test -count N" runs the contenders of a comparison one after the
// other, so the i-th value of each comes from the same run.
func spread(catga, other []float64) (lo, hi float64) {
	n := min(len(catga), len(other))
	for i := range n {
		r := catga[i] / other[i]
		if i == 0 || r < lo {
			lo = r
		}
		if i == 0 || r > hi {
			hi = r
		}
	}
	return lo, hi
}

// verdict judges a comparison by its runs, not its medians alone: met
// when every run's ratio is within the target, not met when none is, and
// undecided when the runs fall on both sides, as a spread wider than the
// gap it would decide.
func verdict(t target, lo, hi, allocs float64) string {
	if t.maxAllocs >= 0 && allocs > t.maxAllocs {
		return "**no**"
	}
	switch {
	case t.maxRatio == 0 || hi <= t.maxRatio:
		return "yes"
	case lo > t.maxRatio:
		return "**no**"
	}
	return "undecided"
}

func num(f float64) string {
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

// value is a median for the table: bare in ns/op, with its unit otherwise.
func value(f float64, unit string) string {
	if unit == "ns/op" {
		return num(f)
	}
	return num(f) + " " + unit
}

func count(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
