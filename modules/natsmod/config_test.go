package natsmod_test

import (
	"strings"
	"testing"

	"github.com/catga-go/catga/modules/natsmod"
)

func TestLoadConfig_DefaultsAndErrorsNameTheVariable(t *testing.T) {
	c, err := natsmod.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "nats://127.0.0.1:4222" || c.Storage != "file" || c.Prefix != "catga" || c.StreamPrefix != "CATGA" {
		t.Fatalf("defaults %+v", c)
	}
	tests := []struct{ env, value, want string }{
		{"NATS_URL", "http://x:1", "NATS_URL"},
		{"NATS_STREAM_STORAGE", "tape", "NATS_STREAM_STORAGE"},
		{"NATS_STREAM_REPLICAS", "7", "NATS_STREAM_REPLICAS"},
		{"NATS_ACK_WAIT", "10ms", "NATS_ACK_WAIT"},
		{"NATS_SUBJECT_PREFIX", "a.b", "NATS_SUBJECT_PREFIX"},
		{"NATS_CREDS", "/no/such/file.creds", "NATS_CREDS"},
		{"NATS_FETCH_BATCH", "lots", "NATS_FETCH_BATCH"},
		{"NATS_PUBLISH_WINDOW", "-1", "NATS_PUBLISH_WINDOW"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			c, err := natsmod.LoadConfig()
			if err == nil {
				err = c.WithDefaults().Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%s=%s: %v, want an error naming %s", tt.env, tt.value, err, tt.want)
			}
		})
	}
}

func TestConfig_ValidateRefusesTwoAuthMethods(t *testing.T) {
	c := natsmod.Config{User: "u", Password: "p", Token: "t"}.WithDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "NATS_TOKEN") {
		t.Fatalf("err %v", err)
	}
}

func TestConfig_StringHidesSecrets(t *testing.T) {
	c := natsmod.Config{URL: "nats://u:hunter2@h:4222,nats://tok3n@h2:4222", Password: "hunter2", Token: "tok3n"}.WithDefaults()
	s := c.String()
	for _, secret := range []string{"hunter2", "tok3n"} {
		if strings.Contains(s, secret) {
			t.Fatalf("String() = %q shows %q", s, secret)
		}
	}
}
