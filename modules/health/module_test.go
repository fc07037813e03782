package health_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga/modules/health"
)

func TestModule_ProvidesRegistryInStarting(t *testing.T) {
	var reg *health.Registry
	app := fxtest.New(t, health.Module, fx.Populate(&reg))
	app.RequireStart().RequireStop()

	if reg == nil {
		t.Fatal("Module provided no *Registry")
	}
	if got := reg.State(); got != health.Starting {
		t.Errorf("state: got %v, want %v", got, health.Starting)
	}
}

type pinger struct{ err error }

func (p *pinger) Check(context.Context) error { return p.err }

// Module adds every check added with Check to the registry it provides.
func TestCheck_AddsCheckersAndConstructorsToTheRegistry(t *testing.T) {
	down := errors.New("down")
	var reg *health.Registry
	app := fxtest.New(t,
		health.Module,
		fx.Supply(&pinger{err: down}),
		health.Check("value", pass()),
		health.Check("ctor", func(p *pinger) health.Checker { return p }),
		health.Check("ctor-concrete", func(p *pinger) *pinger { return p }),
		fx.Populate(&reg),
	)
	app.RequireStart().RequireStop()

	names := reg.Names()
	sort.Strings(names)
	if want := []string{"ctor", "ctor-concrete", "value"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("checks: got %v, want %v", names, want)
	}
	reg.SetState(health.Serving)
	rep, ok := reg.Ready(context.Background())
	if ok {
		t.Fatalf("ready with a failing check: %+v", rep)
	}
	for name, want := range map[string]bool{"value": true, "ctor": false, "ctor-concrete": false} {
		if c, found := rep.Checks[name]; !found || (c.Status == "ok") != want {
			t.Errorf("check %s: %+v, want ok %v", name, c, want)
		}
	}
}

func TestCheck_RejectsWhatIsNotAChecker(t *testing.T) {
	tests := []struct {
		name    string
		checker any
	}{
		{"int", 42},
		{"nil", nil},
		{"constructor of a non-checker", func() string { return "x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := fx.New(fx.NopLogger, health.Module, health.Check("bad", tc.checker))
			if app.Err() == nil {
				t.Errorf("fx.New with health.Check(%q, %#v): got no error, want one", "bad", tc.checker)
			}
		})
	}
}
