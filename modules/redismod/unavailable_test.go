package redismod_test

import (
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/internal/brokertest"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// With Redis stopped, every call over the transport fails with
// CodeUnavailable (503), not internal: Send, Ask, Publish and Dispatch,
// well before the caller's 5 s deadline (a refused dial).
func TestCalls_ServerDownIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	tr := connect(t, testConfig(srv.URL()), "caller")
	bus, err := cqrs.New(cqrs.Options{Service: "caller", Instance: "i1", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	brokertest.CallsAreUnavailable(t, bus, 3*time.Second)
}
