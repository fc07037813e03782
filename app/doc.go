// Package app is the bootstrap: configuration from the environment, the zap
// logger (which also logs fx's own events and backs the *slog.Logger the
// libraries use), Run, and the order of start and shutdown.
//
// # Shutdown
//
// On SIGTERM or SIGINT, within Config.StopTimeout:
//
//  1. /ready turns 503 (the health registry is draining), and stays so for
//     Config.DrainDelay, so Kubernetes takes the pod out of its Services;
//     the HTTP server turns keep-alives off (httpmod.Server.Drain), so a
//     client on a kept-alive connection, which the Service no longer
//     steers, reconnects to another pod after its next answer;
//  2. the bus stops fetching, and the handlers in flight finish and ack;
//  3. the transport drains its connection;
//  4. the HTTP server shuts down, so probes answer until the end;
//  5. Run returns nil and the process exits 0.
//
// fx runs stop hooks in the reverse order of their registration, and each
// module adds its own (cqrs.Module registers the handlers and hooks the
// bus, health.Module adds the checks, httpmod.Module mounts the routes).
// Module fixes the order around them with two invokes: its first, which
// fx runs before the other modules' (catga.Module puts app first), builds
// the logger, the HTTP server and the bus with its transport, so their
// hooks stop last; its last, a top-level invoke fx runs after every
// module's, adds the hook that flips readiness, so it stops first. In
// between, cqrs.Module builds the handlers' dependencies (stores, clients)
// before it hooks the bus, so the bus drains before they stop.
//
// # Run or fx.New
//
// fx.New(catga.Module, orders.Module).Run() and app.Run(catga.Module,
// orders.Module) behave alike: both start within CATGA_START_TIMEOUT and
// stop within CATGA_STOP_TIMEOUT (Module gives fx both, read from the
// environment as the program starts), both report what ends the process
// in one line on stderr ("catga: start: NATS_URL: ..."; see FxLogger), and
// both end a clean stop with the info line "stopped" and exit 0 on SIGINT
// or SIGTERM. What Run adds: it reads the configuration at call time, so a
// main that sets variables before calling it is honoured, reports a bad
// variable before anything is built ("catga: config: ..."), and returns the
// error instead of exiting, so main decides the exit code.
//
// # Libraries
//
// go.uber.org/zap for logs, go.uber.org/zap/exp/zapslog to give the same
// core to log/slog (the cqrs package logs through slog, so it needs no zap
// import), github.com/caarlos0/env for the environment, and go.uber.org/dig's
// RootCause (dig is fx's container) to name a failed constructor's own
// error rather than fx's chain of the constructors that needed it.
package app
