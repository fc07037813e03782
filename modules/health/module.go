package health

import (
	"fmt"

	"go.uber.org/fx"

	"github.com/catga-go/catga/internal/fxreg"
)

// Module provides the *Registry. The checks added with Check are added to
// it by app, after the HTTP server is built: a check's constructor often
// builds a broker connection, whose stop hook must run before the server's.
var Module = fx.Module("health", fx.Provide(func() *Registry { return NewRegistry(0) }))

// ChecksParams are the checks added with Check, for app.
type ChecksParams struct {
	fx.In

	Checks []Named `group:"catga.health"`
}

// Check adds a readiness check named name: a Checker, or a constructor of
// one whose parameters fx provides.
func Check(name string, checker any) fx.Option {
	return fxreg.Group(fmt.Sprintf("health.Check(%q)", name), "catga.health", checker, func(c Checker) Named { return Named{Name: name, Checker: c} })
}
