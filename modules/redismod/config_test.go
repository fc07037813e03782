package redismod_test

import (
	"strings"
	"testing"

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
