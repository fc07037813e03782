package natstest

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is n embedded servers with JetStream, clustered.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n servers (3 for JetStream R3) routed to each other,
// each with its own store, and waits until JetStream has a meta leader.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range ports {
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", p))
		routes = append(routes, u)
	}
	c := &Cluster{}
	for i := range n {
		s := &Server{opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       freePort(t),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "catga-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		}}
		if err := s.startAsync(); err != nil {
			t.Fatalf("natstest: node %d: %v", i, err)
		}
		t.Cleanup(s.Shutdown)
		c.Nodes = append(c.Nodes, s)
	}
	for _, s := range c.Nodes {
		if err := s.waitReady(); err != nil {
			t.Fatalf("natstest: %v", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := 0
		for _, s := range c.Nodes {
			if s.srv != nil && s.srv.JetStreamIsCurrent() && s.srv.JetStreamIsClustered() {
				ready++
			}
		}
		if ready == n && c.hasLeader() {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: cluster of %d has no JetStream meta leader after 30s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) hasLeader() bool {
	for _, s := range c.Nodes {
		if s.srv != nil && s.srv.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// URLs returns the client URLs, comma separated, as NATS_URL takes them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, s := range c.Nodes {
		urls = append(urls, s.URL())
	}
	return strings.Join(urls, ",")
}
