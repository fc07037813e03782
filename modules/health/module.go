package health

import (
	"fmt"

	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/internal/fxreg"
)

// Module provides the *Registry and adds to it the checks added with
// Check, and the bus's ("cqrs") when there is a bus. Under catga.Module the
// HTTP server is built before (app builds it first): a check's constructor
// often builds a broker connection, whose stop hook must run before the
// server's.
var Module = fx.Module("health", fx.Provide(func() *Registry { return NewRegistry(0) }), fx.Invoke(addChecks))

// checksParams are the registry and the checks added with Check.
type checksParams struct {
	fx.In

	Registry *Registry
	Bus      *cqrs.Bus `optional:"true"`
	Checks   []Named   `group:"catga.health"`
}

func addChecks(p checksParams) {
	if p.Bus != nil {
		p.Registry.Add("cqrs", CheckerFunc(p.Bus.Check))
	}
	for _, c := range p.Checks {
		p.Registry.Add(c.Name, c.Checker)
	}
}

// Check adds a readiness check named name: a Checker, or a constructor of
// one whose parameters fx provides.
func Check(name string, checker any) fx.Option {
	return fxreg.Group(fmt.Sprintf("health.Check(%q)", name), "catga.health", checker, func(c Checker) Named { return Named{Name: name, Checker: c} })
}
