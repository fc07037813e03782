package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catga-go/catga/modules/health"
)

func pass() health.Checker {
	return health.CheckerFunc(func(context.Context) error { return nil })
}

func fail(msg string) health.Checker {
	return health.CheckerFunc(func(context.Context) error { return errors.New(msg) })
}

// get serves one GET of path on h and returns the status, headers and body.
func get(t *testing.T, h http.Handler, path string) (int, http.Header, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

// ready serves /ready from reg and decodes its Report.
func ready(t *testing.T, reg *health.Registry) (int, health.Report) {
	t.Helper()
	status, _, body := get(t, reg.ReadyHandler(), "/ready")
	var rep health.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("decode /ready body %q: %v", body, err)
	}
	return status, rep
}

func TestReady_StatusFollowsStateWhenChecksPass(t *testing.T) {
	tests := []struct {
		state      health.State
		wantCode   int
		wantStatus string
	}{
		{health.Starting, http.StatusServiceUnavailable, "unavailable"},
		{health.Serving, http.StatusOK, "ok"},
		{health.Draining, http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.state.String(), func(t *testing.T) {
			reg := health.NewRegistry(time.Second)
			reg.Add("db", pass())
			reg.Add("broker", pass())
			reg.SetState(tc.state)

			code, rep := ready(t, reg)
			if code != tc.wantCode {
				t.Errorf("status code: got %d, want %d", code, tc.wantCode)
			}
			if rep.Status != tc.wantStatus {
				t.Errorf("status: got %q, want %q", rep.Status, tc.wantStatus)
			}
			if rep.State != tc.state.String() {
				t.Errorf("state: got %q, want %q", rep.State, tc.state.String())
			}
			want := map[string]health.CheckResult{"db": {Status: "ok"}, "broker": {Status: "ok"}}
			if !reflect.DeepEqual(rep.Checks, want) {
				t.Errorf("checks: got %+v, want %+v", rep.Checks, want)
			}
		})
	}
}

func TestReady_503NamesEachCheckWithItsError(t *testing.T) {
	reg := health.NewRegistry(time.Second)
	reg.Add("db", pass())
	reg.Add("nats", fail("disconnected"))
	reg.SetState(health.Serving)

	code, rep := ready(t, reg)
	if code != http.StatusServiceUnavailable {
		t.Errorf("status code: got %d, want %d", code, http.StatusServiceUnavailable)
	}
	want := health.Report{
		Status: "unavailable",
		State:  "serving",
		Checks: map[string]health.CheckResult{
			"db":   {Status: "ok"},
			"nats": {Status: "fail", Error: "disconnected"},
		},
	}
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("report: got %+v, want %+v", rep, want)
	}
}

func TestReady_BodyIsTheDocumentedJSON(t *testing.T) {
	reg := health.NewRegistry(time.Second, health.Named{Name: "nats", Checker: fail("disconnected")})
	reg.SetState(health.Serving)

	_, _, body := get(t, reg.ReadyHandler(), "/ready")
	want := `{"status":"unavailable","state":"serving","checks":{"nats":{"status":"fail","error":"disconnected"}}}`
	if got := strings.TrimSpace(string(body)); got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
}

func TestReady_200WithNoChecksWhileServing(t *testing.T) {
	reg := health.NewRegistry(time.Second)
	reg.SetState(health.Serving)

	code, rep := ready(t, reg)
	if code != http.StatusOK {
		t.Errorf("status code: got %d, want %d", code, http.StatusOK)
	}
	if rep.Checks == nil || len(rep.Checks) != 0 {
		t.Errorf("checks: got %#v, want an empty object", rep.Checks)
	}
}

func TestProbes_AnswerUncachedJSON(t *testing.T) {
	reg := health.NewRegistry(time.Second)
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
	}{
		{"live", reg.LiveHandler(), "/health"},
		{"ready", reg.ReadyHandler(), "/ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, hdr, _ := get(t, tc.h, tc.path)
			if got := hdr.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q, want %q", got, "application/json")
			}
			if got := hdr.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control: got %q, want %q", got, "no-store")
			}
		})
	}
}

func TestLive_200InEveryState(t *testing.T) {
	for _, s := range []health.State{health.Starting, health.Serving, health.Draining} {
		t.Run(s.String(), func(t *testing.T) {
			// A failing check must not matter to liveness: a broker outage
			// would otherwise get every pod restarted.
			reg := health.NewRegistry(time.Second, health.Named{Name: "nats", Checker: fail("disconnected")})
			reg.SetState(s)

			code, _, body := get(t, reg.LiveHandler(), "/health")
			if code != http.StatusOK {
				t.Errorf("status code: got %d, want %d", code, http.StatusOK)
			}
			var got map[string]string
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode /health body %q: %v", body, err)
			}
			want := map[string]string{"status": "ok", "state": s.String()}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body: got %v, want %v", got, want)
			}
		})
	}
}

func TestLive_RunsNoCheck(t *testing.T) {
	reg := health.NewRegistry(time.Second, health.Named{Name: "db", Checker: health.CheckerFunc(func(context.Context) error {
		t.Error("/health ran a readiness check")
		return nil
	})})
	get(t, reg.LiveHandler(), "/health")
}

func TestReady_CheckOverTimeoutFailsWithDeadline(t *testing.T) {
	const timeout = 50 * time.Millisecond
	reg := health.NewRegistry(timeout)
	reg.Add("slow", health.CheckerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	reg.Add("fast", pass())
	reg.SetState(health.Serving)

	start := time.Now()
	code, rep := ready(t, reg)
	elapsed := time.Since(start)

	if code != http.StatusServiceUnavailable {
		t.Errorf("status code: got %d, want %d", code, http.StatusServiceUnavailable)
	}
	if got := rep.Checks["slow"]; got.Status != "fail" || !strings.Contains(got.Error, context.DeadlineExceeded.Error()) {
		t.Errorf("slow check: got %+v, want status fail with %q", got, context.DeadlineExceeded)
	}
	if got := rep.Checks["fast"]; got.Status != "ok" {
		t.Errorf("fast check: got %+v, want status ok", got)
	}
	if limit := timeout + 2*time.Second; elapsed > limit {
		t.Errorf("probe took %v, want under %v for a %v timeout", elapsed, limit, timeout)
	}
}

func TestReady_CheckContextHasProbeDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	var deadline time.Time
	var hasDeadline bool
	reg := health.NewRegistry(timeout, health.Named{Name: "db", Checker: health.CheckerFunc(func(ctx context.Context) error {
		deadline, hasDeadline = ctx.Deadline()
		return nil
	})})

	before := time.Now()
	reg.Ready(context.Background())
	after := time.Now()

	if !hasDeadline {
		t.Fatal("check context has no deadline, want one timeout from the probe")
	}
	if earliest, latest := before.Add(timeout), after.Add(timeout); deadline.Before(earliest) || deadline.After(latest) {
		t.Errorf("check deadline: got %v after the probe began, want %v after it", deadline.Sub(before), timeout)
	}
}

// A check that ignores its context (a client call without ctx, a stuck
// lock) must not hold the probe past the timeout: the doc promises each
// check is bounded by it, and a probe that hangs piles up one goroutine per
// kubelet probe for as long as the dependency is stuck.
func TestReady_CheckIgnoringContextDoesNotHoldProbe(t *testing.T) {
	const timeout = 50 * time.Millisecond
	release := make(chan struct{})
	reg := health.NewRegistry(timeout, health.Named{Name: "stuck", Checker: health.CheckerFunc(func(context.Context) error {
		<-release
		return nil
	})})
	reg.SetState(health.Serving)

	type result struct {
		rep health.Report
		ok  bool
	}
	done := make(chan result, 1)
	go func() {
		rep, ok := reg.Ready(context.Background())
		done <- result{rep, ok}
	}()
	defer func() {
		close(release)
		<-done
	}()

	limit := timeout + 2*time.Second
	select {
	case res := <-done:
		done <- res // for the deferred receive
		if res.ok {
			t.Error("Ready: got ok, want not ok while a check is stuck")
		}
		if got := res.rep.Checks["stuck"]; got.Status != "fail" || !strings.Contains(got.Error, context.DeadlineExceeded.Error()) {
			t.Errorf("stuck check: got %+v, want status fail with %q", got, context.DeadlineExceeded)
		}
	case <-time.After(limit):
		t.Errorf("Ready did not return within %v with a %v timeout: it waits for a check that ignores its context", limit, timeout)
	}
}

func TestReady_PanickingCheckIsReportedFailed(t *testing.T) {
	reg := health.NewRegistry(time.Second)
	reg.Add("db", pass())
	reg.Add("cache", health.CheckerFunc(func(context.Context) error { panic("boom") }))
	reg.SetState(health.Serving)

	code, rep := ready(t, reg)
	if code != http.StatusServiceUnavailable {
		t.Errorf("status code: got %d, want %d", code, http.StatusServiceUnavailable)
	}
	if got := rep.Checks["cache"]; got.Status != "fail" || !strings.Contains(got.Error, "boom") {
		t.Errorf("cache check: got %+v, want status fail naming the panic value", got)
	}
	if got := rep.Checks["db"]; got.Status != "ok" {
		t.Errorf("db check: got %+v, want status ok", got)
	}
}

func TestReady_RunsChecksConcurrently(t *testing.T) {
	// Each check waits for the other to have started: run one after the
	// other, the first would wait until the probe timeout and fail.
	aStarted, bStarted := make(chan struct{}), make(chan struct{})
	barrier := func(mine, theirs chan struct{}) health.Checker {
		return health.CheckerFunc(func(ctx context.Context) error {
			close(mine)
			select {
			case <-theirs:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("the other check never started: %w", ctx.Err())
			}
		})
	}
	reg := health.NewRegistry(5*time.Second,
		health.Named{Name: "a", Checker: barrier(aStarted, bStarted)},
		health.Named{Name: "b", Checker: barrier(bStarted, aStarted)},
	)
	reg.SetState(health.Serving)

	rep, ok := reg.Ready(context.Background())
	if !ok {
		t.Errorf("Ready: got not ok (%+v), want ok: checks ran one after the other", rep.Checks)
	}
}

func TestReady_ChecksSeeTheRequestContext(t *testing.T) {
	type key struct{}
	var got any
	reg := health.NewRegistry(time.Second, health.Named{Name: "db", Checker: health.CheckerFunc(func(ctx context.Context) error {
		got = ctx.Value(key{})
		return nil
	})})
	req := httptest.NewRequest(http.MethodGet, "/ready", nil)
	req = req.WithContext(context.WithValue(req.Context(), key{}, "probe"))
	reg.ReadyHandler().ServeHTTP(httptest.NewRecorder(), req)
	if got != "probe" {
		t.Errorf("check context value: got %v, want %q", got, "probe")
	}
}

// A zero Registry should work (STYLE: a zero value works) and NewRegistry
// treats a timeout of 0 as DefaultTimeout; Ready does not, so every check
// of a zero Registry gets a context that has already ended.
func TestReady_ZeroRegistryGivesChecksTheDefaultTimeout(t *testing.T) {
	var reg health.Registry
	reg.Add("db", health.CheckerFunc(func(ctx context.Context) error { return ctx.Err() }))
	reg.SetState(health.Serving)

	rep, ok := reg.Ready(context.Background())
	if !ok {
		t.Errorf("Ready: got not ok (%+v), want ok: the check's context ended before it ran", rep.Checks)
	}
}

// Two checks under one name must not let a passing one hide a failing
// one: a 503 names the failing checks (the package doc).
func TestReady_DuplicateNameKeepsTheFailure(t *testing.T) {
	reg := health.NewRegistry(time.Second)
	reg.Add("db", fail("primary down"))
	reg.Add("db", pass())
	reg.SetState(health.Serving)

	code, rep := ready(t, reg)
	if code != http.StatusServiceUnavailable {
		t.Errorf("status code: got %d, want %d", code, http.StatusServiceUnavailable)
	}
	if got := rep.Checks["db"]; got.Status != "fail" || got.Error != "primary down" {
		t.Errorf("db check: got %+v, want status fail with %q: the 503 names no failing check", got, "primary down")
	}
}

func TestReady_AddDuringProbesIsSafe(t *testing.T) {
	reg := health.NewRegistry(time.Second)
	reg.SetState(health.Serving)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			reg.Add(fmt.Sprintf("check-%d", i), pass())
		}()
		go func() {
			defer wg.Done()
			reg.Ready(context.Background())
		}()
	}
	wg.Wait()
	if got := len(reg.Names()); got != 4 {
		t.Errorf("checks: got %d, want 4", got)
	}
}

func TestNewRegistry_StartsInStartingWithGivenChecks(t *testing.T) {
	reg := health.NewRegistry(0,
		health.Named{Name: "redis", Checker: pass()},
		health.Named{Name: "nats", Checker: pass()},
	)
	if got := reg.State(); got != health.Starting {
		t.Errorf("state: got %v, want %v", got, health.Starting)
	}
	if got, want := reg.Names(), []string{"nats", "redis"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names: got %v, want %v", got, want)
	}
}

func TestNames_SortedAndEmptyWhenNone(t *testing.T) {
	reg := health.NewRegistry(0)
	if got := reg.Names(); len(got) != 0 {
		t.Errorf("names of an empty registry: got %v, want none", got)
	}
	reg.Add("c", pass())
	reg.Add("a", pass())
	reg.Add("b", pass())
	if got, want := reg.Names(), []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names: got %v, want %v", got, want)
	}
}

func TestSetState_MovesState(t *testing.T) {
	reg := health.NewRegistry(0)
	for _, s := range []health.State{health.Serving, health.Draining, health.Starting} {
		reg.SetState(s)
		if got := reg.State(); got != s {
			t.Errorf("state after SetState(%v): got %v", s, got)
		}
	}
}

func TestState_String(t *testing.T) {
	tests := []struct {
		s    health.State
		want string
	}{
		{health.Starting, "starting"},
		{health.Serving, "serving"},
		{health.Draining, "draining"},
		{health.State(7), "state(7)"},
	}
	for _, tc := range tests {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("State(%d).String(): got %q, want %q", int32(tc.s), got, tc.want)
		}
	}
}

func TestCheckerFunc_CallsTheFunction(t *testing.T) {
	want := errors.New("down")
	var c health.Checker = health.CheckerFunc(func(context.Context) error { return want })
	if got := c.Check(context.Background()); got != want {
		t.Errorf("Check: got %v, want %v", got, want)
	}
}
