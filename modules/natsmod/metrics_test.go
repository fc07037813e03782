package natsmod_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// /metrics of a service on NATS shows its redeliveries, dead letters and
// consumer lag under the names the Grafana dashboard queries.
func TestMetrics_RedeliveriesDeadLettersAndLag(t *testing.T) {
	srv := natstest.Start(t)
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("CATGA_SERVICE", "metered")
	t.Setenv("CATGA_MAX_DELIVER", "2")
	t.Setenv("CATGA_RETRY_ATTEMPTS", "1")
	t.Setenv("CATGA_REDELIVERY_INITIAL", "10ms")
	var hs *httpmod.Server
	var bus *cqrs.Bus
	app := fxtest.New(t, catga.Module, natsmod.Module, fx.Replace(testConfig(srv)),
		cqrs.Event[Tick](func(context.Context, Tick) error { return errors.New("always fails") }),
		fx.Populate(&hs, &bus))
	app.RequireStart()
	defer app.RequireStop()
	defer http.DefaultClient.CloseIdleConnections()
	if err := bus.Publish(context.Background(), Tick{N: 1}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`catga_messages_redelivered_total{`, `catga_messages_dead_lettered_total{`,
		`catga_consumer_lag{`, `state="pending"`, `group="metered"`,
		`catga_messages_handled_total{`, `outcome="error"`,
	}
	missing := ""
	if !catgatest.Poll(10*time.Second, func() bool {
		resp, err := http.Get("http://" + hs.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = ""
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				missing = w
				break
			}
		}
		return missing == ""
	}) {
		t.Fatalf("/metrics lacks %s", missing)
	}
}
