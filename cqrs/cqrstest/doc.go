// Package cqrstest is the contract every transport.Transport passes: one suite,
// run from the transport's own test file as slogtest.TestHandler is run.
//
//	func TestConformance(t *testing.T) {
//		cqrstest.TestTransport(t, cqrstest.Features{Persistent: true},
//			func(t *testing.T) cqrstest.Connect {
//				broker := mybroker.StartForTest(t)          // one broker per case
//				return func(t *testing.T) transport.Transport { // one connection per call
//					tr, err := mytransport.Dial(broker.URL)
//					if err != nil {
//						t.Fatal(err)
//					}
//					t.Cleanup(func() { tr.Close(context.Background()) })
//					return tr
//				}
//			})
//	}
//
// newBackend is called once per case and must isolate the case: a fresh
// broker, or fresh stream names or key prefixes on a shared one. Each call
// of the Connect it returns is a new connection to that backend, as a
// separate process would open; the suite runs several services and
// instances on several connections. A transport with a Close(ctx) error
// method is closed by the suite when a case restarts an instance; the
// connection's own cleanup must tolerate a second close.
//
// The cases (smaller counts under -short): publish/subscribe with every
// header intact; 5,000 events from 50 publishers to 50 handlers; 20 topics
// kept apart; 2 groups x 3 instances each getting every event once, spread;
// a service's own events handled once; redelivery with attempts 1, 2, 3 and
// nothing blocked meanwhile; dead letters after MaxDeliver, and at once for
// a permanent error, an undecodable payload and an unknown type; replay to
// the dead letter's group only; 5 close-and-reopen cycles of a durable group
// losing nothing; 10 concurrent closes without a panic or a leaked
// goroutine; handler contexts cancelled on close and publish bounded by its
// context; request/reply results, error codes, 3 responders answering once
// each, no responder failing within 100 ms, deadlines, late replies
// dropped; durable commands once over 3 instances and across a restart;
// idempotency; drain on stop, and a stop not held by deliveries waiting on
// claims held elsewhere (given back, handled once by the next instance);
// the payload limit. Each case reports the
// missing and extra message keys when it fails.
//
// Features switch off what a transport truly cannot do; a case switched
// off is skipped with its reason, so it shows in -v output.
package cqrstest
