package pgmod_test

import (
	"testing"
	"time"

	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/modules/pgmod"
)

// The envDefault tags are the one source of the defaults: WithDefaults
// fills what a Config read from an empty environment holds.
func TestConfigWithDefaults_FromTheTags(t *testing.T) {
	want := pgmod.Config{MaxConns: 10, ConnectTimeout: 5 * time.Second, OutboxBatch: 256, OutboxPoll: 100 * time.Millisecond,
		LeadRetry: time.Second, InboxTTL: 168 * time.Hour, JanitorEvery: 10 * time.Minute}
	if got := (pgmod.Config{}).WithDefaults(); got != want {
		t.Errorf("Config{}.WithDefaults(): got %+v, want %+v", got, want)
	}
	if tags, err := envconf.Defaults[pgmod.Config](); err != nil || tags != want {
		t.Errorf("the tags: %+v, %v; want %+v", tags, err, want)
	}
	set := pgmod.Config{URL: "postgres://h/db", MaxConns: 3, ConnectTimeout: time.Second, OutboxBatch: 1, OutboxPoll: time.Millisecond,
		LeadRetry: 2 * time.Second, InboxTTL: time.Hour, JanitorEvery: time.Minute}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults: got %+v, want %+v unchanged", got, set)
	}
}
