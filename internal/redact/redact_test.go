package redact_test

import (
	"strings"
	"testing"

	"github.com/catga-go/catga/internal/redact"
)

func TestURL_HidesThePasswordOfAnyURL(t *testing.T) {
	tests := []struct{ in, secret string }{
		{"nats://svc:pw@host:4222", "pw"},
		{"nats://svc:left@right@127.0.0.1:bad", "left@right"},
		{"redis://svc:malformed-pass@127.0.0.1:bad/0", "malformed-pass"},
		{"redis://svc:sp ace@host:6379/0", "sp ace"},
		{"redis://svc:bad%zzesc@host:6379/0", "bad%zzesc"},
		{"nats://tok3nvalue@host:4222", "tok3nvalue"},
		{"redis://u:pa/ss@host:6379/0", "pa/ss"},
	}
	for _, tt := range tests {
		got := redact.URL(tt.in)
		if strings.Contains(got, tt.secret) {
			t.Errorf("URL(%q) = %q shows %q", tt.in, got, tt.secret)
		}
		if !strings.Contains(got, "host") && !strings.Contains(got, "127.0.0.1") {
			t.Errorf("URL(%q) = %q lost the host", tt.in, got)
		}
	}
	if got := redact.URL("nats://host:4222"); got != "nats://host:4222" {
		t.Errorf("a URL without user info changed: %q", got)
	}
}

func TestText_ScrubsParseErrorsOfBadURLs(t *testing.T) {
	raw := "redis://svc:malformed-pass@127.0.0.1:bad/0"
	msg := `parse "` + raw + `": invalid port ":bad" after host`
	got := redact.Text(msg, []string{raw})
	if strings.Contains(got, "malformed-pass") {
		t.Fatalf("Text = %q", got)
	}
}
