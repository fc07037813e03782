package redismod

import "github.com/catga-go/catga/cqrs"

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
func (k keys) stream(t cqrs.Topic) string { return k.tagged(t.Kind.Plural()+":"+t.Name, "") }

// requests is a command's or query's request stream.
func (k keys) requests(t cqrs.Topic) string { return k.tagged("rpc:"+t.Kind.Plural()+":"+t.Name, "") }

// servers is the set of instances serving a topic, scored by heartbeat.
func (k keys) servers(t cqrs.Topic) string {
	return k.tagged("rpc:"+t.Kind.Plural()+":"+t.Name, "servers")
}

// replies is one transport's reply list.
func (k keys) replies(owner string) string { return k.tagged("reply:"+owner, "") }

// deadLetters is the stream of dead letters.
func (k keys) deadLetters() string { return k.tagged("dlq", "records") }

// replay is a group's replay stream.
func (k keys) replay(group string) string { return k.tagged("replay:"+group, "") }

// inbox is an idempotency key.
func (k keys) inbox(key string) string { return k.prefix + ":inbox:" + key }

// registry lists every stream key created, for the janitor.
func (k keys) registry() string { return k.tagged("registry", "streams") }
