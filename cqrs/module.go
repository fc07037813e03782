package cqrs

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/fxreg"
)

// Module provides the *Bus, with the behaviors added with Use, the
// transport a module installs with ProvideTransport, and the Config,
// *slog.Logger and inbox.Store in the container (each optional), and
// runs it: it registers the handlers added with Command, Query and Event
// and hooks Bus.Start and Bus.Stop to the lifecycle. So
// fx.New(cqrs.Module, memory.Module, orders.Module) is a working bus.
//
// The bus does not depend on its handlers, so a handler's constructor can
// take the *Bus to publish. Module's invoke builds the handlers first, then
// hooks the bus: their dependencies (stores, clients) start before it and
// stop after it has drained.
var Module = fx.Module("cqrs", fx.Provide(provide), fx.Invoke(run))

// params are the bus's dependencies in fx.
type params struct {
	fx.In

	Config      Config               `optional:"true"`
	Logger      *slog.Logger         `optional:"true"`
	Idempotency inbox.Store          `optional:"true"`
	Transports  []installedTransport `group:"catga.transports"`
	Behaviors   []behaviorSet        `group:"catga.behaviors"`
	Codecs      []Codec              `group:"catga.codecs"`

	// Telemetry, from app when the OTEL_* variables turn it on.
	TracerProvider trace.TracerProvider `optional:"true"`
	MeterProvider  metric.MeterProvider `optional:"true"`
}

// runParams are the bus and the handlers registered with Command, Query
// and Event.
type runParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Bus       *Bus
	Handlers  []Registration `group:"catga.handlers"`
}

func run(p runParams) error {
	if err := p.Bus.Register(p.Handlers...); err != nil {
		return err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: p.Bus.Start, OnStop: p.Bus.Stop})
	return nil
}

// installedTransport is a transport a module offers the bus. A Fallback
// one (the memory transport) is used only when no other is installed.
type installedTransport struct {
	Name      string
	Transport transport.Transport
	Fallback  bool
}

// ProvideTransport installs the transport that ctor builds (ctor's
// parameters come from the container). Install one besides the memory
// fallback; two is a startup error naming both.
func ProvideTransport(name string, ctor any) fx.Option {
	return fxreg.Group(fmt.Sprintf("cqrs.ProvideTransport(%q)", name), "catga.transports", ctor, func(t transport.Transport) installedTransport {
		return installedTransport{Name: name, Transport: t}
	})
}

// ProvideFallbackTransport installs the transport used when no other is.
func ProvideFallbackTransport(name string, ctor any) fx.Option {
	return fxreg.Group(fmt.Sprintf("cqrs.ProvideFallbackTransport(%q)", name), "catga.transports", ctor, func(t transport.Transport) installedTransport {
		return installedTransport{Name: name, Transport: t, Fallback: true}
	})
}

// Command registers the handler of command C, which returns R. handler is a
// CommandHandler[C, R], a func(context.Context, C) (R, error), or a
// constructor of a CommandHandler[C, R] whose parameters fx provides.
//
// The type arguments are spelled out because Go cannot infer C and R from a
// constructor's result; fx checks the constructor against them at startup.
func Command[C, R any](handler any, opts ...HandlerOption) fx.Option {
	if fn, ok := handler.(func(context.Context, C) (R, error)); ok {
		handler = CommandHandlerFunc[C, R](fn)
	}
	return fxreg.Group(helperName("Command", reflect.TypeFor[C](), reflect.TypeFor[R]()), "catga.handlers", handler, func(h CommandHandler[C, R]) Registration {
		return HandleCommand(h, opts...)
	})
}

// Query registers the handler of query Q, which returns R, as Command does.
func Query[Q, R any](handler any, opts ...HandlerOption) fx.Option {
	if fn, ok := handler.(func(context.Context, Q) (R, error)); ok {
		handler = QueryHandlerFunc[Q, R](fn)
	}
	return fxreg.Group(helperName("Query", reflect.TypeFor[Q](), reflect.TypeFor[R]()), "catga.handlers", handler, func(h QueryHandler[Q, R]) Registration {
		return HandleQuery(h, opts...)
	})
}

// Event registers one handler of event E: an EventHandler[E], a
// func(context.Context, E) error, or a constructor of an EventHandler[E].
func Event[E any](handler any, opts ...HandlerOption) fx.Option {
	if fn, ok := handler.(func(context.Context, E) error); ok {
		handler = EventHandlerFunc[E](fn)
	}
	return fxreg.Group(helperName("Event", reflect.TypeFor[E]()), "catga.handlers", handler, func(h EventHandler[E]) Registration {
		return HandleEvent(h, opts...)
	})
}

// CommandMethod registers a method of a type fx provides as the handler of
// command C: cqrs.CommandMethod((*Orders).Place) for
// func (o *Orders) Place(ctx context.Context, c PlaceOrder) (OrderID, error).
// Go infers every type from the method expression; the handler is named
// after the method ("orders.(*Orders).Place") unless HandlerName says.
func CommandMethod[T, C, R any](method func(T, context.Context, C) (R, error), opts ...HandlerOption) fx.Option {
	opts = append([]HandlerOption{HandlerName(funcName(method))}, opts...)
	return Command[C, R](func(recv T) CommandHandler[C, R] {
		return CommandHandlerFunc[C, R](func(ctx context.Context, c C) (R, error) { return method(recv, ctx, c) })
	}, opts...)
}

// QueryMethod registers a method as the handler of query Q, as
// CommandMethod does.
func QueryMethod[T, Q, R any](method func(T, context.Context, Q) (R, error), opts ...HandlerOption) fx.Option {
	opts = append([]HandlerOption{HandlerName(funcName(method))}, opts...)
	return Query[Q, R](func(recv T) QueryHandler[Q, R] {
		return QueryHandlerFunc[Q, R](func(ctx context.Context, q Q) (R, error) { return method(recv, ctx, q) })
	}, opts...)
}

// EventMethod registers a method as one handler of event E, as
// CommandMethod does: cqrs.EventMethod((*Projector).OrderCreated).
func EventMethod[T, E any](method func(T, context.Context, E) error, opts ...HandlerOption) fx.Option {
	opts = append([]HandlerOption{HandlerName(funcName(method))}, opts...)
	return Event[E](func(recv T) EventHandler[E] {
		return EventHandlerFunc[E](func(ctx context.Context, e E) error { return method(recv, ctx, e) })
	}, opts...)
}

// funcName is a method expression's name without its import path:
// "orders.(*Projector).OrderCreated".
func funcName(fn any) string {
	name := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	return name[strings.LastIndex(name, "/")+1:]
}

// behaviorSet is one Use argument's behavior, with its place in the order
// of every Use call's arguments.
type behaviorSet struct {
	seq       uint64
	behaviors []Behavior
}

var behaviorSeq atomic.Uint64

// Use adds behaviors inside the default ones, around every dispatch and
// delivery, in the order given and of the Use calls. Each is a Behavior (or
// a func(Step) Step), or a constructor of a Behavior whose parameters
// fx provides, for a behavior that needs the app's logger or a store:
//
//	cqrs.Use(func(log *zap.Logger) cqrs.Behavior { return audit(log) })
func Use(behaviors ...any) fx.Option {
	opts := make([]fx.Option, 0, len(behaviors))
	for i, b := range behaviors {
		seq := behaviorSeq.Add(1)
		set := func(bh Behavior) behaviorSet { return behaviorSet{seq: seq, behaviors: []Behavior{bh}} }
		inGroup := fx.ResultTags(`group:"catga.behaviors"`)
		switch b := b.(type) {
		case Behavior:
			opts = append(opts, fx.Provide(fx.Annotate(func() behaviorSet { return set(b) }, inGroup)))
		case func(Step) Step:
			opts = append(opts, fx.Provide(fx.Annotate(func() behaviorSet { return set(b) }, inGroup)))
		default:
			if err := behaviorConstructor(b); err != nil {
				return fx.Error(fmt.Errorf("cqrs.Use: argument %d: %w", i+1, err))
			}
			name := fmt.Sprintf(`name:"catga.behavior.%d"`, seq)
			opts = append(opts,
				fx.Provide(fx.Annotate(b, fx.ResultTags(name))),
				fx.Provide(fx.Annotate(set, fx.ParamTags(name), inGroup)))
		}
	}
	return fx.Options(opts...)
}

// behaviorConstructor reports why b is not a constructor of a Behavior.
func behaviorConstructor(b any) error {
	want := reflect.TypeFor[Behavior]()
	t := reflect.TypeOf(b)
	if b == nil || t.Kind() != reflect.Func {
		return fmt.Errorf("%s is neither a cqrs.Behavior nor a constructor of one", fxreg.TypeName(t))
	}
	if t.NumOut() == 0 || t.Out(0) != want || t.NumOut() > 2 || (t.NumOut() == 2 && t.Out(1) != reflect.TypeFor[error]()) {
		return fmt.Errorf("the constructor %s must return a cqrs.Behavior, or a cqrs.Behavior and an error", fxreg.TypeName(t))
	}
	return nil
}

// UseCodec adds a codec the bus decodes by its content type.
func UseCodec(c Codec) fx.Option {
	return fx.Provide(fx.Annotate(func() Codec { return c }, fx.ResultTags(`group:"catga.codecs"`)))
}

func provide(p params) (*Bus, error) {
	t, err := chooseTransport(p.Transports)
	if err != nil {
		return nil, err
	}
	sort.Slice(p.Behaviors, func(i, j int) bool { return p.Behaviors[i].seq < p.Behaviors[j].seq })
	var user []Behavior
	for _, s := range p.Behaviors {
		user = append(user, s.behaviors...)
	}
	o, err := p.Config.options(wiring{
		transport: t,
		logger:    p.Logger,
		inbox:     p.Idempotency,
		behaviors: user,
		codecs:    p.Codecs,
		tracer:    p.TracerProvider,
		meter:     p.MeterProvider,
	})
	if err != nil {
		return nil, err
	}
	return New(o)
}

func chooseTransport(ts []installedTransport) (transport.Transport, error) {
	var chosen, fallback []installedTransport
	for _, t := range ts {
		if t.Fallback {
			fallback = append(fallback, t)
		} else {
			chosen = append(chosen, t)
		}
	}
	if len(chosen) == 0 {
		chosen = fallback
	}
	switch len(chosen) {
	case 0:
		return nil, nil
	case 1:
		return chosen[0].Transport, nil
	}
	names := make([]string, len(chosen))
	for i, t := range chosen {
		names[i] = t.Name
	}
	return nil, fmt.Errorf("cqrs: %d transports installed (%s); install one", len(chosen), strings.Join(names, ", "))
}

// helperName is how a registration helper's call reads in an error:
// "cqrs.Command[orders.Greet, int]".
func helperName(helper string, types ...reflect.Type) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = fxreg.TypeName(t)
	}
	return "cqrs." + helper + "[" + strings.Join(names, ", ") + "]"
}
