package natsmod_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/modules/natsmod/natstest"
)

func TestStreams_CreatedOnceThenLimitsUpdated(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	connect(t, cfg, "first")
	connect(t, cfg, "second") // idempotent
	cfg.MaxAge = 2 * time.Hour
	connect(t, cfg, "third")
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), cfg.StreamPrefix+"_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo().Config
	if info.MaxAge != 2*time.Hour || info.Retention != jetstream.LimitsPolicy || info.Subjects[0] != cfg.Prefix+".events.*" {
		t.Fatalf("events stream %+v", info)
	}
	c, _ := js.Stream(context.Background(), cfg.StreamPrefix+"_COMMANDS")
	if c.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		t.Fatalf("commands stream retention %v, want work queue", c.CachedInfo().Config.Retention)
	}
}

func TestStreams_ConflictingStreamIsReportedNotOverwritten(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	name := cfg.StreamPrefix + "_EVENTS"
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	err := startErr(t, cfg)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "other.>") {
		t.Fatalf("start: %v, want an error naming %s and its subjects", err, name)
	}
	s, _ := js.Stream(context.Background(), name)
	if got := s.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != "other.>" {
		t.Fatalf("the stream was changed to %v", got)
	}
}
