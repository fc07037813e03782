package natsmod

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs/transport"
)

// Stream names.
func (c Config) eventsStream() string   { return c.StreamPrefix + "_EVENTS" }
func (c Config) commandsStream() string { return c.StreamPrefix + "_COMMANDS" }
func (c Config) dlqStream() string      { return c.StreamPrefix + "_DLQ" }

func (c Config) streamOf(k transport.Kind) string {
	if k == transport.KindCommand {
		return c.commandsStream()
	}
	return c.eventsStream()
}

// streamConfigs are the three streams: events (limits: every group reads
// them), commands (a work queue: removed once the owner acks) and dead
// letters with their replays.
func (c Config) streamConfigs() []jetstream.StreamConfig {
	base := func(name, desc string, subjects []string, ret jetstream.RetentionPolicy) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Description: desc, Subjects: subjects, Retention: ret, Storage: c.storage(),
			Replicas: c.Replicas, MaxBytes: c.MaxBytes, Duplicates: c.Duplicates, Discard: jetstream.DiscardOld,
		}
	}
	events := base(c.eventsStream(), "catga events", []string{c.Prefix + ".events.*"}, jetstream.LimitsPolicy)
	events.MaxAge = c.MaxAge
	commands := base(c.commandsStream(), "catga durable commands", []string{c.Prefix + ".commands.*"}, jetstream.WorkQueuePolicy)
	commands.MaxAge = c.MaxAge
	dlq := base(c.dlqStream(), "catga dead letters and replays", []string{c.Prefix + ".dlq.>"}, jetstream.LimitsPolicy)
	dlq.MaxAge = c.DLQMaxAge
	return []jetstream.StreamConfig{events, commands, dlq}
}

// ensureStreams creates each stream that is missing and updates the limits
// of one that exists (max age, bytes, replicas, dedup window). A stream
// that exists with other subjects, retention or storage is an error naming
// the difference: changing those would lose or strand messages.
func ensureStreams(ctx context.Context, js jetstream.JetStream, c Config) error {
	for _, want := range c.streamConfigs() {
		s, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err := js.CreateStream(ctx, want); err != nil {
				return fmt.Errorf("natsmod: create stream %s: %w", want.Name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("natsmod: look up stream %s: %w", want.Name, err)
		}
		have := s.CachedInfo().Config
		var conflicts []string
		if !sameSet(have.Subjects, want.Subjects) {
			conflicts = append(conflicts, fmt.Sprintf("subjects %v, want %v", have.Subjects, want.Subjects))
		}
		if have.Retention != want.Retention {
			conflicts = append(conflicts, fmt.Sprintf("retention %v, want %v", have.Retention, want.Retention))
		}
		if have.Storage != want.Storage {
			conflicts = append(conflicts, fmt.Sprintf("storage %v, want %v (NATS_STREAM_STORAGE)", have.Storage, want.Storage))
		}
		if len(conflicts) > 0 {
			return fmt.Errorf("natsmod: stream %s exists with %v; it was made for something else: delete it, or choose another NATS_STREAM_PREFIX or NATS_SUBJECT_PREFIX", want.Name, conflicts)
		}
		if have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes && have.Replicas == want.Replicas && have.Duplicates == want.Duplicates {
			continue
		}
		upd := have
		upd.MaxAge, upd.MaxBytes, upd.Replicas, upd.Duplicates = want.MaxAge, want.MaxBytes, want.Replicas, want.Duplicates
		if _, err := js.UpdateStream(ctx, upd); err != nil {
			return fmt.Errorf("natsmod: update stream %s limits: %w", want.Name, err)
		}
	}
	return nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
