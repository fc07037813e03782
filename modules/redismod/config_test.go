package redismod_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/modules/redismod"
)

func TestLoadConfig_DefaultsAndErrorsNameTheVariable(t *testing.T) {
	c, err := redismod.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "redis://127.0.0.1:6379/0" || c.Prefix != "catga" || !c.HashTags {
		t.Fatalf("defaults %+v", c)
	}
	tests := []struct{ env, value string }{
		{"REDIS_URL", "http://x"},
		{"REDIS_CONNECTION", "nohostport"},
		{"REDIS_CLAIM_IDLE", "10ms"},
		{"REDIS_POOL_SIZE", "many"},
		{"REDIS_TLS_CA", "/no/such/ca.pem"},
		{"REDIS_PREFIX", "a{b}"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			c, err := redismod.LoadConfig()
			if err == nil {
				err = c.WithDefaults().Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.env) {
				t.Fatalf("%s=%s: %v, want an error naming %s", tt.env, tt.value, err, tt.env)
			}
		})
	}
}

func TestConfig_ClusterFromConnection(t *testing.T) {
	c := redismod.Config{Connection: "a:1, b:2,c:3"}.WithDefaults()
	o, err := c.Options()
	if err != nil || len(o.Addrs) != 3 || o.Addrs[1] != "b:2" {
		t.Fatalf("options %+v, %v", o, err)
	}
}

func TestConfig_StringHidesThePassword(t *testing.T) {
	c := redismod.Config{URL: "redis://u:hunter22@h:6379/0", Password: "other-secret"}.WithDefaults()
	if s := c.String(); strings.Contains(s, "hunter22") || strings.Contains(s, "other-secret") {
		t.Fatalf("String() = %q", s)
	}
}

// The envDefault tags are the one source of the defaults: WithDefaults of
// a zero Config is what a Config read from an empty environment holds, for
// every field but HashTags, whose false WithDefaults keeps.
func TestConfigWithDefaults_FromTheTags(t *testing.T) {
	tags, err := envconf.Defaults[redismod.Config]()
	if err != nil {
		t.Fatal(err)
	}
	got := redismod.Config{}.WithDefaults()
	if got.HashTags {
		t.Errorf("HashTags true, want false kept")
	}
	if !tags.HashTags {
		t.Errorf("the tags' HashTags false, want true")
	}
	got.HashTags = tags.HashTags
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
	var set redismod.Config
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
