package natsmod_test

import (
	"context"
	"fmt"
	"net/http"
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

func readyStatus(t *testing.T, url string) int {
	t.Helper()
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitReady(t *testing.T, url string, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	catgatest.Eventually(t, within, fmt.Sprintf("/ready not %d", want), func() bool { return readyStatus(t, url) == want })
	return time.Since(start)
}

// With natsmod added, /ready follows the broker: 503 within 2s of the
// server stopping, 200 again once it is back.
func TestReadiness_FollowsTheServer(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("CATGA_SERVICE", "readiness")
	var hs *httpmod.Server
	app := fxtest.New(t, catga.Module, natsmod.Module,
		fx.Replace(cfg),
		cqrs.Event[Tick](func(context.Context, Tick) error { return nil }),
		fx.Populate(&hs),
	)
	app.RequireStart()
	defer app.RequireStop()
	defer http.DefaultClient.CloseIdleConnections()
	url := "http://" + hs.Addr() + "/ready"
	waitReady(t, url, http.StatusOK, 5*time.Second)

	srv.Shutdown()
	took := waitReady(t, url, http.StatusServiceUnavailable, 2*time.Second)
	t.Logf("/ready 503 %v after the server stopped", took.Round(time.Millisecond))

	srv.StartAgain(t)
	took = waitReady(t, url, http.StatusOK, 10*time.Second)
	t.Logf("/ready 200 %v after the server returned", took.Round(time.Millisecond))
}
