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

// schedulesStream holds scheduled messages on servers without message
// scheduling (before 2.12), for the transports' own scheduler.
func (c Config) schedulesStream() string { return c.StreamPrefix + "_SCHEDULES" }

func (c Config) streamOf(k transport.Kind) string {
	if k == transport.KindCommand {
		return c.commandsStream()
	}
	return c.eventsStream()
}

// streamConfigs are the streams: events (limits: every group reads them),
// commands (a work queue: removed once the owner acks) and dead letters
// with their replays. On a server that schedules messages (native, 2.12
// and later) events and commands take their scheduled messages too, on
// subjects of their own; on an older one a fourth stream holds them.
func (c Config) streamConfigs(native bool) []jetstream.StreamConfig {
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
	if native {
		for _, sc := range []*jetstream.StreamConfig{&events, &commands} {
			kind := transport.KindEvent
			if sc == &commands {
				kind = transport.KindCommand
			}
			sc.Subjects = append(sc.Subjects, c.nativeSchedules(kind))
			sc.AllowMsgSchedules, sc.AllowRollup = true, true // the server purges a schedule by rollup once it fired
		}
		return []jetstream.StreamConfig{events, commands, dlq}
	}
	// No age limit: a message may be scheduled months ahead.
	schedules := base(c.schedulesStream(), "catga scheduled messages", []string{c.Prefix + ".scheduled.*"}, jetstream.WorkQueuePolicy)
	return []jetstream.StreamConfig{events, commands, dlq, schedules}
}

// nativeSchedules is the subjects of a kind's scheduled messages on a
// server that schedules them: <prefix>.schedules.events.<id>.
func (c Config) nativeSchedules(k transport.Kind) string {
	return c.Prefix + ".schedules." + k.Plural() + ".*"
}

// ensureStreams creates each stream that is missing and updates the limits
// of one that exists (max age, bytes, replicas, dedup window). A stream
// that exists with other subjects, retention or storage is an error naming
// the difference: changing those would lose or strand messages.
func ensureStreams(ctx context.Context, js jetstream.JetStream, c Config, native bool) error {
	for _, want := range c.streamConfigs(native) {
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
		// Subjects for scheduled messages may be added (the server was
		// upgraded to one that schedules) or be there already (made by a
		// newer server); no other difference is safe.
		schedules := []string{c.nativeSchedules(transport.KindEvent), c.nativeSchedules(transport.KindCommand)}
		plain := func(subjects []string) []string {
			return slices.DeleteFunc(slices.Clone(subjects), func(s string) bool { return slices.Contains(schedules, s) })
		}
		if !sameSet(plain(have.Subjects), plain(want.Subjects)) {
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
		addSchedules := want.AllowMsgSchedules && (!have.AllowMsgSchedules || !sameSet(have.Subjects, want.Subjects))
		if !addSchedules && have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes && have.Replicas == want.Replicas && have.Duplicates == want.Duplicates {
			continue
		}
		upd := have
		upd.MaxAge, upd.MaxBytes, upd.Replicas, upd.Duplicates = want.MaxAge, want.MaxBytes, want.Replicas, want.Duplicates
		if addSchedules {
			upd.Subjects, upd.AllowMsgSchedules, upd.AllowRollup = want.Subjects, true, true
		}
		if _, err := js.UpdateStream(ctx, upd); err != nil {
			return fmt.Errorf("natsmod: update stream %s: %w", want.Name, err)
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
