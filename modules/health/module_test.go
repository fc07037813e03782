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

func TestCheck_AddsCheckersAndConstructorsToTheGroup(t *testing.T) {
	down := errors.New("down")
	var got health.ChecksParams
	app := fxtest.New(t,
		fx.Supply(&pinger{err: down}),
		health.Check("value", pass()),
		health.Check("ctor", func(p *pinger) health.Checker { return p }),
		health.Check("ctor-concrete", func(p *pinger) *pinger { return p }),
		fx.Invoke(func(p health.ChecksParams) { got = p }),
	)
	app.RequireStart().RequireStop()

	names := make([]string, 0, len(got.Checks))
	byName := map[string]health.Checker{}
	for _, c := range got.Checks {
		names = append(names, c.Name)
		byName[c.Name] = c.Checker
	}
	sort.Strings(names)
	if want := []string{"ctor", "ctor-concrete", "value"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("checks: got %v, want %v", names, want)
	}
	if err := byName["value"].Check(context.Background()); err != nil {
		t.Errorf("value check: got %v, want nil", err)
	}
	if err := byName["ctor"].Check(context.Background()); !errors.Is(err, down) {
		t.Errorf("ctor check: got %v, want %v", err, down)
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
			app := fx.New(fx.NopLogger, health.Check("bad", tc.checker), fx.Invoke(func(health.ChecksParams) {}))
			if app.Err() == nil {
				t.Errorf("fx.New with health.Check(%q, %#v): got no error, want one", "bad", tc.checker)
			}
		})
	}
}
