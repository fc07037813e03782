package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"go.uber.org/dig"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/catga-go/catga/internal/envconf"
)

// Timeouts are the process's start and stop bounds, part of Config; fx
// takes them before any constructor runs (see processTimeouts).
type Timeouts struct {
	StartTimeout time.Duration `env:"CATGA_START_TIMEOUT" envDefault:"15s"`
	StopTimeout  time.Duration `env:"CATGA_STOP_TIMEOUT" envDefault:"25s"`
}

// validate reports each timeout that is not positive.
func (t Timeouts) validate() []error {
	var errs []error
	for name, d := range map[string]time.Duration{"CATGA_START_TIMEOUT": t.StartTimeout, "CATGA_STOP_TIMEOUT": t.StopTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %v", name, d))
		}
	}
	return errs
}

func loadTimeouts() (Timeouts, error) {
	t, err := envconf.Load[Timeouts]()
	if err != nil {
		return t, err
	}
	return t, errors.Join(t.validate()...)
}

// processTimeouts gives fx CATGA_START_TIMEOUT and CATGA_STOP_TIMEOUT, so
// fx.New(catga.Module, ...).Run() is bounded by them as Run is. fx takes its
// timeouts as options, before any constructor runs, so they are read from
// the environment as the program starts (Module is a package variable): a
// main that sets them with os.Setenv is too late, and Run, which reads
// them again, is for that.
func processTimeouts() fx.Option {
	t, err := loadTimeouts()
	if err != nil {
		return fx.Error(err)
	}
	return fx.Options(fx.StartTimeout(t.StartTimeout), fx.StopTimeout(t.StopTimeout))
}

// FxLogger is Module's logger of fx's events. It depends on nothing in the
// container, so it is in place whatever fails to build, and:
//
//   - logs fx's events, errors included with fx's whole chain of
//     constructors, at debug, through a logger of LOG_LEVEL and LOG_FORMAT;
//   - reports what ends the app on stderr in one line, once: the cause of
//     the first error of building or starting it ("catga: start: ..." for a
//     constructor's or a start hook's error, the error itself for a bad
//     option, which names its helper), or of stopping it ("catga: stop:
//     ..."), a timeout named by its variable and the hook still running;
//   - logs "stopped" at info after a clean stop, the process's last line.
func FxLogger() fxevent.Logger {
	l := &fxLogger{out: stderr, timeouts: Timeouts{StartTimeout: fx.DefaultTimeout, StopTimeout: fx.DefaultTimeout}}
	if t, err := loadTimeouts(); err == nil {
		l.timeouts = t
	}
	if c, err := LoadConfig(); err == nil {
		if log, err := NewLogger(c); err == nil {
			l.log = log
			z := &fxevent.ZapLogger{Logger: log.Named("fx")}
			z.UseLogLevel(zapcore.DebugLevel)
			z.UseErrorLevel(zapcore.DebugLevel)
			l.events = z
		}
	}
	return l
}

// fxLogger is FxLogger's logger. Without a valid LOG_LEVEL or LOG_FORMAT it
// has no zap logger and only reports.
type fxLogger struct {
	out      io.Writer
	log      *zap.Logger    // nil when the config does not build one
	events   fxevent.Logger // log's fx events at debug; nil with log
	timeouts Timeouts

	mu       sync.Mutex
	cause    error  // the first error of a start, or of a stop
	running  string // the hook that has begun and not ended
	reported bool
}

func (l *fxLogger) LogEvent(e fxevent.Event) {
	if l.events != nil {
		l.events.LogEvent(e)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := e.(type) {
	case *fxevent.Provided:
		l.keep(e.Err, "start: ")
	case *fxevent.Decorated:
		l.keep(e.Err, "start: ")
	case *fxevent.Supplied:
		l.keep(e.Err, "start: ")
	case *fxevent.Replaced:
		l.keep(e.Err, "start: ")
	case *fxevent.Run:
		l.keep(e.Err, "start: ")
	case *fxevent.Invoked:
		l.keep(e.Err, "start: ")
	case *fxevent.OnStartExecuting:
		l.running = e.FunctionName
	case *fxevent.OnStartExecuted:
		l.running = ""
		l.keep(e.Err, "start: ")
	case *fxevent.Started:
		if e.Err != nil {
			l.end(e.Err, "start: ", "CATGA_START_TIMEOUT", l.timeouts.StartTimeout)
		}
	case *fxevent.OnStopExecuting:
		l.running = e.FunctionName
	case *fxevent.OnStopExecuted:
		l.running = ""
		l.keep(e.Err, "stop: ")
	case *fxevent.Stopped:
		if e.Err != nil {
			l.end(e.Err, "stop: ", "CATGA_STOP_TIMEOUT", l.timeouts.StopTimeout)
		} else if l.log != nil {
			l.log.Info("stopped")
			_ = l.log.Sync()
		}
	}
}

// keep keeps err, prefixed, as the cause when it is the first error.
// A dig error is a chain of constructors: the cause is its root, the error a
// constructor returned.
func (l *fxLogger) keep(err error, prefix string) {
	if err == nil || l.cause != nil {
		return
	}
	if prefix != "" {
		err = fmt.Errorf("%s%w", prefix, dig.RootCause(err))
	}
	l.cause = err
}

// end reports why a start or stop failed with err: the cause kept, or a
// deadline named by the variable that bounds it (d) and the hook still
// running, or err itself, an option's error, which names its helper.
func (l *fxLogger) end(err error, prefix, variable string, d time.Duration) {
	if l.reported {
		return
	}
	l.reported = true
	if l.cause == nil && errors.Is(err, context.DeadlineExceeded) {
		msg := fmt.Sprintf("%snot done within %s (%v)", prefix, variable, d)
		if l.running != "" {
			msg += ": " + l.running + " still running"
		}
		l.cause = errors.New(msg)
	}
	if l.cause == nil {
		l.cause = err
	}
	if l.log != nil {
		_ = l.log.Sync()
	}
	fmt.Fprintln(l.out, "catga: "+strings.ReplaceAll(strings.TrimSpace(l.cause.Error()), "\n", "; "))
}
