package redismod

import (
	"strings"

	"github.com/catga-go/catga/cqrs/transport"
)

// keys builds every key redismod uses. With hash tags (the default) each
// stream's tag is its kind and name, so a cluster spreads streams over its
// masters while a stream's own keys stay on one.
type keys struct {
	prefix string
	tags   bool
}

func (k keys) tagged(tag, rest string) string {
	if k.tags {
		tag = "{" + tag + "}"
	}
	if rest != "" {
		return k.prefix + ":" + tag + ":" + rest
	}
	return k.prefix + ":" + tag
}

// stream is a topic's stream: catga:{events:OrderCreated}.
func (k keys) stream(t transport.Topic) string { return k.tagged(t.Kind.Plural()+":"+t.Name, "") }

// requests is a command's or query's request stream.
func (k keys) requests(t transport.Topic) string {
	return k.tagged("rpc:"+t.Kind.Plural()+":"+t.Name, "")
}

// servers is the set of instances serving a topic, scored by heartbeat.
func (k keys) servers(t transport.Topic) string {
	return k.tagged("rpc:"+t.Kind.Plural()+":"+t.Name, "servers")
}

// replies is one transport's reply list.
func (k keys) replies(owner string) string { return k.tagged("reply:"+owner, "") }

// deadLetters is the stream of dead letters.
func (k keys) deadLetters() string { return k.tagged("dlq", "records") }

// replay is a group's replay stream.
func (k keys) replay(group string) string { return k.tagged("replay:"+group, "") }

// due is a group's sorted set of naked entries ("<stream> <id>") by the
// time their delay ends, in ms.
func (k keys) due(group string) string { return k.tagged("due:"+group, "") }

// inbox is an idempotency key.
func (k keys) inbox(key string) string { return k.prefix + ":inbox:" + key }

// registry lists every stream key created, for the janitor.
func (k keys) registry() string { return k.tagged("registry", "streams") }

// outboxKeys builds the keys of one Outbox. Each starts with the outbox's
// hash tag ("{catga:orders}"), so that on a cluster a transaction's state
// keys (Outbox.Key), its inbox mark and the outbox stream share one slot.
// The outbox's own keys have a first part that starts with "_".
type outboxKeys struct {
	tag string // with its braces
}

// state is a key of the user's state: {catga:orders}:order:42.
func (k outboxKeys) state(parts []string) string {
	if len(parts) == 0 {
		return k.tag
	}
	return k.tag + ":" + strings.Join(parts, ":")
}

// stream is the outbox stream the relay publishes from.
func (k outboxKeys) stream() string { return k.tag + ":_outbox" }

// dead is the stream of outbox entries the broker refused for good.
func (k outboxKeys) dead() string { return k.tag + ":_outbox:dead" }

// lead is the relay's lease: whoever holds it publishes.
func (k outboxKeys) lead() string { return k.tag + ":_outbox:lead" }

// mark is the inbox mark of a message handled by consumer (service/handler).
func (k outboxKeys) mark(consumer, id string) string { return k.tag + ":_inbox:" + consumer + ":" + id }

// version is the version of an ordering key (Key), bumped by each commit.
func (k outboxKeys) version(key string) string { return k.tag + ":_key:" + key }

// anchor is never written: a cluster transaction with nothing to watch
// watches it, so that it runs on the tag's node.
func (k outboxKeys) anchor() string { return k.tag + ":_tx" }

// keySlot is the Redis Cluster slot of key: CRC16 (XMODEM) of its hash tag
// (the part inside its first non-empty {...}) or of the whole key, mod 16384.
func keySlot(key string) uint16 {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
