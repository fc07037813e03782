package natsmod_test

import (
	"context"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/internal/brokertest"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// With the server down, every call over the transport fails at once (within
// 1 s) with CodeUnavailable (503): Send, Ask, Publish and Dispatch.
func TestCalls_ServerDownIsUnavailable(t *testing.T) {
	srv := natstest.Start(t)
	tr := connect(t, testConfig(srv), "caller")
	bus, err := cqrs.New(cqrs.Options{Service: "caller", Instance: "i1", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	catgatest.Eventually(t, 3*time.Second, "the transport still reads connected", func() bool { return tr.Check(context.Background()) != nil })
	brokertest.CallsAreUnavailable(t, bus, time.Second)
}
