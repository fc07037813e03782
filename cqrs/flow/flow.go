// Package flow is process managers (sagas): a typed flow of steps, each
// the reaction of one instance of the flow to one event, with the state of
// each instance kept in a Store in the same transaction as the messages
// the step sends and the delivery's inbox mark.
//
//	var Checkout = flow.New[CheckoutState]("checkout")
//
//	func init() {
//		flow.Start(Checkout, func(e OrderCreated) string { return e.OrderID },
//			func(c *flow.Context, s *CheckoutState, e OrderCreated) error {
//				s.Status = "reserving"
//				if _, err := c.PublishAfter(15*time.Minute, PaymentTimedOut{OrderID: e.OrderID}); err != nil {
//					return err
//				}
//				return c.Send(ReserveStock{OrderID: e.OrderID, Items: e.Items})
//			})
//		flow.On(Checkout, func(e PaymentFailed) string { return e.OrderID }, releaseStock)
//	}
//
// and in the service: flow.Provide(Checkout), with a flow.Store provided
// (pgmod's DB.FlowStore, redismod's Outbox.FlowStore, or NewMemoryStore).
//
// # What a step is
//
// Each step is an event handler of the bus (named "flow:<name>", with
// cqrs.OwnInbox): the event's key names the instance; the store loads its
// state (a new instance's zero state for a Start step; an On step for an
// instance that does not exist does nothing), the step's function changes
// it and sends through its Context, and the store saves the state, appends
// the step to the instance's history and writes what it sent to its outbox
// in one transaction. So:
//
//   - a step happens once per event: a redelivered event finds its message
//     id in the instance's history (and the store's own inbox) and is
//     skipped;
//   - a crash mid-step leaves the instance as it was, and nothing sent;
//     the redelivery runs the step again;
//   - steps of one instance never run at once: the store serialises them
//     (a row lock on PostgreSQL, an optimistic WATCH on Redis, a mutex in
//     memory), and a step that returns an error changes nothing and is
//     retried as any failed delivery;
//   - timeouts are scheduled messages (Context.PublishAfter), written with
//     the state and scheduled after commit; a timeout's step reads the
//     state to see whether it still matters, since a cancel can race the
//     time.
//
// State is JSON (cqrs.JSON, the bus's codec), so a flow's state type is a
// plain struct with exported fields. Store.Get, Handler (HTTP) and `catga flow` read an
// instance's state and history.
package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Flow is a declared process: its state type S and its steps.
type Flow[S any] struct {
	name  string
	steps []step
	types map[reflect.Type]bool
}

// step builds one step's registration for a bus and store.
type step func(bus *cqrs.Bus, store Store) cqrs.Registration

// New declares a flow named name (a wire name: a letter, then letters,
// digits, '-' and '_'):
// the name keys its instances in the store, so keep it when the code is
// renamed.
func New[S any](name string) *Flow[S] {
	if err := transport.ValidateName(name); err != nil {
		panic(fmt.Sprintf("flow.New(%q): %v", name, err))
	}
	return &Flow[S]{name: name, types: map[reflect.Type]bool{}}
}

// Name is the flow's name.
func (f *Flow[S]) Name() string { return f.name }

// StepFunc is a step: it changes s, the instance's state, in reaction to e,
// and sends through c. An error changes nothing (and the delivery is
// retried); a cqrs.Permanent one dead-letters it.
type StepFunc[S, E any] func(c *Context, s *S, e E) error

// Start adds a step that may create an instance: an E whose key names no
// instance starts one from S's zero value.
func Start[S, E any](f *Flow[S], key func(E) string, fn StepFunc[S, E]) {
	add(f, key, fn, true)
}

// On adds a step for an instance that exists: an E whose key names none
// (the flow never started for it, or its state was removed) is ignored.
func On[S, E any](f *Flow[S], key func(E) string, fn StepFunc[S, E]) {
	add(f, key, fn, false)
}

func add[S, E any](f *Flow[S], key func(E) string, fn StepFunc[S, E], start bool) {
	t := reflect.TypeFor[E]()
	if f.types[t] {
		panic(fmt.Sprintf("flow %s: a second step for %v: one step per event type", f.name, t))
	}
	if key == nil || fn == nil {
		panic(fmt.Sprintf("flow %s: the step for %v needs a key and a function", f.name, t))
	}
	f.types[t] = true
	f.steps = append(f.steps, func(bus *cqrs.Bus, store Store) cqrs.Registration {
		h := func(ctx context.Context, e E) error { return run(ctx, f.name, bus, store, key(e), start, e, fn) }
		return cqrs.HandleEvent(cqrs.EventHandlerFunc[E](h), cqrs.HandlerName("flow:"+f.name), cqrs.OwnInbox())
	})
}

// Registrations are the flow's steps as handlers of bus, keeping their
// state in store: give them to cqrs.New or Bus.Register (Provide does it
// under fx).
func (f *Flow[S]) Registrations(bus *cqrs.Bus, store Store) []cqrs.Registration {
	regs := make([]cqrs.Registration, len(f.steps))
	for i, s := range f.steps {
		regs[i] = s(bus, store)
	}
	return regs
}

// Provide registers f's steps with the application's bus, on the Store
// the application provides (pgmod's DB.FlowStore, redismod's
// Outbox.FlowStore, or NewMemoryStore).
func Provide[S any](f *Flow[S]) fx.Option {
	return fx.Provide(fx.Annotate(func(bus *cqrs.Bus, store Store) []cqrs.Registration {
		return f.Registrations(bus, store)
	}, fx.ResultTags(`group:"catga.handlers,flatten"`)))
}

// run is one step: the store's transaction around the step's function.
func run[S, E any](ctx context.Context, flow string, bus *cqrs.Bus, store Store, key string, start bool, e E, fn StepFunc[S, E]) error {
	if key == "" || len(key) > maxKey {
		return cqrs.Permanent(fmt.Errorf("flow %s: %T has key %q: want 1-%d bytes", flow, e, key, maxKey))
	}
	var id, name string
	if m, ok := cqrs.MessageFrom(ctx); ok {
		id, name = m.ID(), m.Topic().Name
	} else {
		name = fmt.Sprintf("%T", e) // a step run outside a delivery, in a test
	}
	return store.Run(ctx, flow, key, func(ctx context.Context, in *Instance) error {
		if in.Version == 0 && !start {
			return ErrSkip // not started: nothing to advance
		}
		if id != "" && in.Handled(id) {
			return ErrSkip // a redelivery of a step that committed
		}
		var s S
		if len(in.State) > 0 {
			if err := cqrs.JSON.Unmarshal(in.State, &s); err != nil {
				return cqrs.Permanent(fmt.Errorf("flow %s/%s: state: %w", flow, key, err))
			}
		}
		c := &Context{Context: ctx, bus: bus, flow: flow, key: key, started: in.Version == 0}
		if err := fn(c, &s, e); err != nil {
			return err
		}
		state, err := cqrs.JSON.Marshal(&s)
		if err != nil {
			return cqrs.Permanent(fmt.Errorf("flow %s/%s: state: %w", flow, key, err))
		}
		in.State = state
		in.History = append(in.History, Entry{Step: name, MessageID: id, At: time.Now().UTC(), Note: c.note})
		return nil
	})
}

// maxKey bounds an instance key.
const maxKey = 256

// Context is what a step acts through: the handler's context (which
// carries the store's transaction and outbox) and the bus.
type Context struct {
	context.Context
	bus     *cqrs.Bus
	flow    string
	key     string
	started bool
	note    string
}

// Flow is the flow's name; Key the instance's key.
func (c *Context) Flow() string { return c.flow }

// Key is the instance's key.
func (c *Context) Key() string { return c.key }

// Started reports whether this step creates the instance.
func (c *Context) Started() bool { return c.started }

// Send dispatches cmd (durable work for its owner) with the step: it is
// written to the store's outbox with the state and sent after commit.
func (c *Context) Send(cmd any) error { return c.bus.Dispatch(c, cmd) }

// Publish publishes event with the step, as Send.
func (c *Context) Publish(event any) error { return c.bus.Publish(c, event) }

// PublishAfter schedules event d from now (a timeout), written with the
// step and scheduled after commit; it returns the message's id.
func (c *Context) PublishAfter(d time.Duration, event any) (string, error) {
	return c.bus.PublishAt(c, time.Now().Add(d), event)
}

// DispatchAfter schedules cmd d from now, as PublishAfter.
func (c *Context) DispatchAfter(d time.Duration, cmd any) (string, error) {
	return c.bus.DispatchAt(c, time.Now().Add(d), cmd)
}

// Note sets the text of this step's history entry.
func (c *Context) Note(format string, args ...any) { c.note = fmt.Sprintf(format, args...) }

// ErrSkip, from the function given to Store.Run, ends the run with nothing
// saved and nothing sent; Run returns nil.
var ErrSkip = errors.New("flow: skip")

// ErrNotFound: Store.Get found no instance.
var ErrNotFound = cqrs.Errorf(cqrs.CodeNotFound, "flow: no such instance")

// Store keeps flow instances.
type Store interface {
	// Run loads instance (flow, key), or a new one (Version 0, no state)
	// when there is none, and calls fn with it in one transaction of the
	// store, fn's ctx carrying the store's outbox (transport.WithOutbox)
	// and, when ctx is a delivery's handler context, its inbox. If fn
	// returns nil, the instance as fn left it is saved with Version one
	// more, the history entries fn appended added and fn's messages
	// written, all in that transaction. Runs of one instance are
	// serialised. If fn returns ErrSkip nothing is saved and Run returns
	// nil; any other error saves nothing and is returned.
	Run(ctx context.Context, flow, key string, fn func(ctx context.Context, in *Instance) error) error
	// Get returns the instance (flow, key), or ErrNotFound.
	Get(ctx context.Context, flow, key string) (*Instance, error)
}

// Instance is one run of a flow: its state and the steps it took.
type Instance struct {
	Flow    string          `json:"flow"`
	Key     string          `json:"key"`
	Version int64           `json:"version"` // steps saved; 0 before the first
	State   json.RawMessage `json:"state"`
	History []Entry         `json:"history"`
	Created time.Time       `json:"created"`
	Updated time.Time       `json:"updated"`
}

// Entry is one step of an instance's history.
type Entry struct {
	Step      string    `json:"step"`       // the event's wire name
	MessageID string    `json:"message_id"` // the event's id
	At        time.Time `json:"at"`
	Note      string    `json:"note,omitempty"`
}

// Handled reports whether the history holds a step of message id.
func (in *Instance) Handled(id string) bool {
	for i := len(in.History) - 1; i >= 0; i-- {
		if in.History[i].MessageID == id {
			return true
		}
	}
	return false
}

// Steps registers the steps of the *Flow[S] the application provides, on
// its Store: for a flow built by a constructor (from configuration, say),
// where Provide takes a flow declared as a value.
func Steps[S any]() fx.Option {
	return fx.Provide(fx.Annotate(func(f *Flow[S], bus *cqrs.Bus, store Store) []cqrs.Registration {
		return f.Registrations(bus, store)
	}, fx.ResultTags(`group:"catga.handlers,flatten"`)))
}
