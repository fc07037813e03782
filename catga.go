package catga

import (
	"go.uber.org/fx"

	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

// Module is the default composition: app (config, logs, lifecycle order),
// the cqrs bus, the memory transport as fallback (JSON is the bus's default
// codec), health probes and the HTTP server. Add natsmod.Module or
// redismod.Module and the bus uses that broker instead; nothing else changes.
//
// It is fx.Options, not fx.Module, so app's fx logger applies to the whole
// app (see app.Module).
var Module = fx.Options(
	app.Module,
	cqrs.Module,
	memory.Module,
	health.Module,
	httpmod.Module,
)
