package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Checker reports whether a dependency is ready; nil means ready.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckerFunc adapts a function to a Checker.
type CheckerFunc func(ctx context.Context) error

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// Named is a Checker with the name /ready reports it under.
type Named struct {
	Name    string
	Checker Checker
}

// State is the registry's phase in the process's life.
type State int32

// The phases.
const (
	Starting State = iota
	Serving
	Draining
)

func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Serving:
		return "serving"
	case Draining:
		return "draining"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// DefaultTimeout bounds each check of one probe.
const DefaultTimeout = 2 * time.Second

// Registry holds the readiness checks and the process's phase.
type Registry struct {
	timeout time.Duration
	state   atomic.Int32

	mu     sync.RWMutex
	checks []Named
}

// NewRegistry returns a registry in the Starting state with checks.
// A timeout of 0 means DefaultTimeout.
func NewRegistry(timeout time.Duration, checks ...Named) *Registry {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	r := &Registry{timeout: timeout}
	for _, c := range checks {
		r.Add(c.Name, c.Checker)
	}
	return r
}

// Add registers a readiness check.
func (r *Registry) Add(name string, c Checker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, Named{Name: name, Checker: c})
}

// SetState moves the registry to s.
func (r *Registry) SetState(s State) { r.state.Store(int32(s)) }

// State returns the registry's phase.
func (r *Registry) State() State { return State(r.state.Load()) }

// CheckResult is one check's outcome in a Report.
type CheckResult struct {
	Status string `json:"status"` // "ok" or "fail"
	Error  string `json:"error,omitempty"`
}

// Report is the body of /ready.
type Report struct {
	Status string                 `json:"status"` // "ok" or "unavailable"
	State  string                 `json:"state"`
	Checks map[string]CheckResult `json:"checks"`
}

// Ready runs every check and reports; ok is true when the registry is
// serving and every check passed. A check still running when the timeout
// ends fails with the context's error: the probe answers in time even when
// a check ignores its context (that check's goroutine ends when it returns).
func (r *Registry) Ready(ctx context.Context) (rep Report, ok bool) {
	r.mu.RLock()
	checks := append([]Named(nil), r.checks...)
	r.mu.RUnlock()
	timeout := r.timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		i   int
		err error
	}
	done := make(chan result, len(checks)) // buffered: a late check never blocks
	for i, c := range checks {
		go func() {
			var err error
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("check panicked: %v", v)
				}
				done <- result{i, err}
			}()
			err = c.Checker.Check(ctx)
		}()
	}
	results := make([]error, len(checks))
	finished := make([]bool, len(checks))
	for n := 0; n < len(checks); n++ {
		select {
		case res := <-done:
			results[res.i], finished[res.i] = res.err, true
			continue
		case <-ctx.Done():
		}
		break
	}
	for i := range results {
		if !finished[i] {
			results[i] = ctx.Err() // as a check that honours its context reports
		}
	}
	state := r.State()
	ok = state == Serving
	rep = Report{State: state.String(), Checks: make(map[string]CheckResult, len(checks))}
	for i, c := range checks {
		if results[i] != nil {
			ok = false
			rep.Checks[c.Name] = CheckResult{Status: "fail", Error: results[i].Error()}
		} else if _, seen := rep.Checks[c.Name]; !seen {
			// A passing check never hides a failing one of the same name.
			rep.Checks[c.Name] = CheckResult{Status: "ok"}
		}
	}
	rep.Status = "ok"
	if !ok {
		rep.Status = "unavailable"
	}
	return rep, ok
}

// Names returns the registered check names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, len(r.checks))
	for i, c := range r.checks {
		names[i] = c.Name
	}
	sort.Strings(names)
	return names
}

// LiveHandler serves /health: 200 and {"status":"ok"} while the process serves.
func (r *Registry) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "state": r.State().String()})
	})
}

// ReadyHandler serves /ready: 200 with the Report when ready, 503 otherwise.
func (r *Registry) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rep, ok := r.Ready(req.Context())
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, rep)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
