package natsmod

import "github.com/nats-io/nats.go"

// PendingAcks is how many asynchronous publishes of t nats.go still holds
// a future for, awaiting an ack.
func PendingAcks(t *Transport) int {
	t.mu.Lock()
	js := t.js
	t.mu.Unlock()
	if js == nil {
		return 0
	}
	return js.PublishAsyncPending()
}

// PretendConnected makes t's status read CONNECTED, as when the
// connection's disconnect callback has not run yet: what a publish then
// meets is nats.go's own refusal.
func PretendConnected(t *Transport) { t.state.Store(int32(nats.CONNECTED)) }

// Conn is t's connection, or nil before Start.
func Conn(t *Transport) *nats.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nc
}

// UsePerTopicLayout gives t's subscriptions one consumer per topic, as on
// a server older than 2.10, whatever server it connects to.
func UsePerTopicLayout(t *Transport) { t.perTopic = true }

// PerKindLayout reports whether t's subscriptions read through one
// consumer per kind on the server t is connected to.
func PerKindLayout(t *Transport) bool { return t.perKind(Conn(t)) }

// SchedulesNative reports whether the server schedules t's messages.
func SchedulesNative(t *Transport) bool { return t.native.Load() }
