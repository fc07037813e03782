package cqrstest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// collector records which keys each instance handled.
type collector struct {
	mu     sync.Mutex
	counts map[string]int            // key -> times handled
	by     map[string]map[string]int // instance -> key -> times
}

func newCollector() *collector {
	return &collector{counts: map[string]int{}, by: map[string]map[string]int{}}
}

func (c *collector) add(instance, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[key]++
	if c.by[instance] == nil {
		c.by[instance] = map[string]int{}
	}
	c.by[instance][key]++
}

// has reports whether every key of want was handled at least once.
func (c *collector) has(want []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range want {
		if c.counts[k] == 0 {
			return false
		}
	}
	return true
}

func (c *collector) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// perInstance returns how many messages each instance handled.
func (c *collector) perInstance() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for inst, keys := range c.by {
		for _, v := range keys {
			out[inst] += v
		}
	}
	return out
}

// diff describes what differs from want: missing keys, keys handled that
// were never sent, and (when once) keys handled more than once.
func (c *collector) diff(want []string, once bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	wanted := make(map[string]bool, len(want))
	var missing, extra, dups []string
	for _, k := range want {
		wanted[k] = true
		switch n := c.counts[k]; {
		case n == 0:
			missing = append(missing, k)
		case n > 1 && once:
			dups = append(dups, fmt.Sprintf("%s x%d", k, n))
		}
	}
	for k := range c.counts {
		if !wanted[k] {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra)+len(dups) == 0 {
		return ""
	}
	return fmt.Sprintf("%d sent, %d handled: missing %s; never sent %s; duplicated %s",
		len(want), c.totalLocked(), list(missing), list(extra), list(dups))
}

func (c *collector) totalLocked() int {
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// list shows up to 20 keys of ks.
func list(ks []string) string {
	if len(ks) == 0 {
		return "none"
	}
	sort.Strings(ks)
	total, more := len(ks), ""
	if total > 20 {
		more = fmt.Sprintf(" and %d more", total-20)
		ks = slices.Clone(ks[:20])
	}
	return fmt.Sprintf("%d [%s%s]", total, strings.Join(ks, " "), more)
}

// keys returns prefix0..prefix(n-1).
func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
