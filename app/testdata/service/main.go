// Command service is a tiny catga service for app's process tests. Its
// first argument is the form it runs in: "run" for app.Run, "fxnew" for
// fx.New(...).Run(). CATGA_TEST_CASE adds what a test needs.
package main

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"time"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod"
)

type Greet struct{ Name string }

func main() {
	opts := []fx.Option{catga.Module}
	switch os.Getenv("CATGA_TEST_CASE") {
	case "slow-start": // a start hook that ignores its context
		opts = append(opts, fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStart: func(context.Context) error { time.Sleep(time.Hour); return nil }})
		}))
	case "slow-stop": // a stop hook that ignores its context
		opts = append(opts, fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStop: func(context.Context) error { time.Sleep(time.Hour); return nil }})
		}))
	case "nats": // NATS_URL from the environment
		opts = append(opts, natsmod.Module)
	case "wrong-result": // the handler returns string, not int
		opts = append(opts, cqrs.Command[Greet, int](func() cqrs.CommandHandlerFunc[Greet, string] {
			return func(context.Context, Greet) (string, error) { return "", nil }
		}))
	case "sigterm-in-start": // SIGTERM while the app is still starting
		opts = append(opts, fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStart: func(context.Context) error { return syscall.Kill(os.Getpid(), syscall.SIGTERM) }})
		}))
	case "slog": // a library that logs through slog.Default
		opts = append(opts, fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStart: func(context.Context) error { slog.Info("hello from slog", "n", 1); return nil }})
		}))
	}
	if len(os.Args) > 1 && os.Args[1] == "fxnew" {
		fx.New(opts...).Run()
		return
	}
	if err := app.Run(opts...); err != nil {
		os.Exit(1)
	}
}
