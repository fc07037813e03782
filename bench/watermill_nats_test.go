package bench

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
)

func init() {
	register("NATSEvents", "watermill", wmNATSEvents)
}

// wmNATSEvents: watermill-nats v2 on JetStream. A publisher (each Publish
// waits for the stream's ack, with the message UUID as Nats-Msg-Id, as
// catga publishes with its envelope id) and a subscriber: a durable push
// consumer in a queue group with explicit ack, the stream provisioned by
// the subscriber (file storage, the library's stream defaults). b.N JSON
// events from 16 publishers, each decoded, acked and counted by one
// consumer. The subscriber acks fire-and-forget (AckAsync), as catga and
// the raw contender do; everything else is the library's defaults
// (SubscribersCount 1, AckWaitTimeout 30s, NATSMarshaler).
func wmNATSEvents(b *testing.B, env Env) {
	defer wmSettle(runtime.NumGoroutine())
	logger := watermill.NopLogger{}
	// A stream (and subject) of its own per run: stream names allow no '.'.
	topic := fmt.Sprintf("watermill_%d_%s", b.N, watermill.NewShortUUID())

	admin, err := nats.Connect(env.NATS)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	adminJS, err := admin.JetStream()
	if err != nil {
		b.Fatal(err)
	}
	// Runs after the subscriber has closed: the stream goes with the run.
	defer func() {
		if err := adminJS.DeleteStream(topic); err != nil {
			b.Errorf("delete stream %s: %v", topic, err)
		}
	}()

	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:              env.NATS,
		QueueGroupPrefix: "watermill",
		JetStream: wmnats.JetStreamConfig{
			AutoProvision:    true, // creates the stream named topic, subject topic
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
			DurablePrefix:    "watermill",
			AckAsync:         true,
		},
	}, logger)
	if err != nil {
		b.Fatal(err)
	}
	closeSub := func() {
		if err := sub.Close(); err != nil {
			b.Errorf("watermill nats subscriber close: %v", err)
		}
	}
	defer closeSub()
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL:       env.NATS,
		JetStream: wmnats.JetStreamConfig{TrackMsgId: true},
	}, logger)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()

	wmEvents(b, pub, sub, topic, closeSub) // Subscribe returns once the stream and the durable consumer exist
}
