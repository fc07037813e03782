package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/catga-go/catga/modules/health"
)

// The registry answers /ready with 503 until the app says it is serving,
// and names every check with its outcome.
func ExampleRegistry() {
	reg := health.NewRegistry(time.Second)
	reg.Add("db", health.CheckerFunc(func(context.Context) error { return nil }))
	reg.Add("nats", health.CheckerFunc(func(context.Context) error { return errors.New("disconnected") }))

	probe := func() {
		rec := httptest.NewRecorder()
		reg.ReadyHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	probe()
	reg.SetState(health.Serving)
	probe()
	// Output:
	// 503 {"status":"unavailable","state":"starting","checks":{"db":{"status":"ok"},"nats":{"status":"fail","error":"disconnected"}}}
	// 503 {"status":"unavailable","state":"serving","checks":{"db":{"status":"ok"},"nats":{"status":"fail","error":"disconnected"}}}
}

// On shutdown the app moves the registry to Draining: /ready turns 503 so
// Kubernetes stops routing to the pod, while /health stays 200 so it is not
// restarted.
func ExampleRegistry_SetState() {
	reg := health.NewRegistry(time.Second)
	mux := http.NewServeMux()
	mux.Handle("GET /health", reg.LiveHandler())
	mux.Handle("GET /ready", reg.ReadyHandler())

	for _, s := range []health.State{health.Starting, health.Serving, health.Draining} {
		reg.SetState(s)
		live, ready := httptest.NewRecorder(), httptest.NewRecorder()
		mux.ServeHTTP(live, httptest.NewRequest(http.MethodGet, "/health", nil))
		mux.ServeHTTP(ready, httptest.NewRequest(http.MethodGet, "/ready", nil))
		fmt.Printf("%-8s /health %d /ready %d\n", s, live.Code, ready.Code)
	}
	// Output:
	// starting /health 200 /ready 503
	// serving  /health 200 /ready 200
	// draining /health 200 /ready 503
}

// Ready is the probe without HTTP.
func ExampleRegistry_Ready() {
	reg := health.NewRegistry(50*time.Millisecond, health.Named{
		Name: "slow",
		Checker: health.CheckerFunc(func(ctx context.Context) error {
			<-ctx.Done() // a dependency that does not answer in time
			return ctx.Err()
		}),
	})
	reg.SetState(health.Serving)

	rep, ok := reg.Ready(context.Background())
	fmt.Println(ok, rep.Status, rep.Checks["slow"].Error)
	// Output:
	// false unavailable context deadline exceeded
}
