package natsmod_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/catga-go/catga/internal/envconf"
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

// The envDefault tags are the one source of the defaults: WithDefaults of
// a zero Config is what a Config read from an empty environment holds, for
// every field but MaxAge, whose zero (no age limit) WithDefaults keeps.
func TestConfigWithDefaults_FromTheTags(t *testing.T) {
	tags, err := envconf.Defaults[natsmod.Config]()
	if err != nil {
		t.Fatal(err)
	}
	got := natsmod.Config{}.WithDefaults()
	if got.MaxAge != 0 {
		t.Errorf("MaxAge %v, want 0 (no age limit) kept", got.MaxAge)
	}
	if tags.MaxAge != 168*time.Hour {
		t.Errorf("the tags' MaxAge %v, want 168h", tags.MaxAge)
	}
	got.MaxAge = tags.MaxAge
	if got != tags {
		gv, tv := reflect.ValueOf(got), reflect.ValueOf(tags)
		for i := 0; i < gv.NumField(); i++ {
			if g, w := gv.Field(i).Interface(), tv.Field(i).Interface(); g != w {
				t.Errorf("Config{}.WithDefaults().%s = %v, the tags say %v", gv.Type().Field(i).Name, g, w)
			}
		}
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate of the defaults: %v", err)
	}
}

// WithDefaults leaves every field that is set as it is, a value other than
// the default included.
func TestConfigWithDefaults_KeepsSetFields(t *testing.T) {
	var set natsmod.Config
	v := reflect.ValueOf(&set).Elem()
	for i := 0; i < v.NumField(); i++ {
		switch f := v.Field(i); f.Interface().(type) {
		case string:
			f.SetString("x")
		case bool:
			f.SetBool(true)
		case time.Duration:
			f.SetInt(int64(7 * time.Second))
		case int, int64:
			f.SetInt(7)
		default:
			t.Fatalf("field %s: type %s not covered", v.Type().Field(i).Name, f.Type())
		}
	}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults: got %+v, want %+v unchanged", got, set)
	}
}
