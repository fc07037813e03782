package httpmod_test

import (
	"strings"
	"testing"
	"time"

	"github.com/catga-go/catga/internal/envconf"
	httpmod "github.com/catga-go/catga/modules/http"
)

// The envDefault tags are the one source of the defaults: WithDefaults
// fills what a Config read from an empty environment holds, and derives
// HandlerTimeout, which has no tag.
func TestConfigWithDefaults_FromTheTags(t *testing.T) {
	tags, err := envconf.Defaults[httpmod.Config]()
	if err != nil {
		t.Fatal(err)
	}
	got := httpmod.Config{}.WithDefaults()
	if got.HandlerTimeout != tags.WriteTimeout-tags.WriteTimeout/6 {
		t.Errorf("HandlerTimeout %v, want 5/6 of %v", got.HandlerTimeout, tags.WriteTimeout)
	}
	got.HandlerTimeout = 0
	if got != tags {
		t.Errorf("Config{}.WithDefaults(): got %+v, the tags say %+v", got, tags)
	}
}

func TestConfigWithDefaults_FillsZeroFields(t *testing.T) {
	want := httpmod.Config{
		Addr:              ":8080",
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxBodyBytes:      1 << 20,
		HandlerTimeout:    25 * time.Second,
	}
	if got := (httpmod.Config{}).WithDefaults(); got != want {
		t.Errorf("Config{}.WithDefaults(): got %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("Validate of the defaults: got %v, want nil", err)
	}
}

func TestConfigWithDefaults_KeepsSetFields(t *testing.T) {
	set := httpmod.Config{
		Addr:              "127.0.0.1:9000",
		ReadHeaderTimeout: time.Second,
		ReadTimeout:       2 * time.Second,
		WriteTimeout:      3 * time.Second,
		IdleTimeout:       4 * time.Second,
		MaxBodyBytes:      512,
		HandlerTimeout:    2 * time.Second,
		TrustedProxies:    "10.0.0.0/8",
		AdminAddr:         "127.0.0.1:9001",
	}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults: got %+v, want %+v unchanged", got, set)
	}
}

func TestConfigValidate_NamesTheBadVariable(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*httpmod.Config)
		variable string
	}{
		{"addr without port", func(c *httpmod.Config) { c.Addr = "localhost" }, "HTTP_ADDR"},
		{"addr empty", func(c *httpmod.Config) { c.Addr = "" }, "HTTP_ADDR"},
		{"addr too many colons", func(c *httpmod.Config) { c.Addr = "a:b:c" }, "HTTP_ADDR"},
		{"negative read header timeout", func(c *httpmod.Config) { c.ReadHeaderTimeout = -time.Second }, "HTTP_READ_HEADER_TIMEOUT"},
		{"zero read header timeout", func(c *httpmod.Config) { c.ReadHeaderTimeout = 0 }, "HTTP_READ_HEADER_TIMEOUT"},
		{"negative read timeout", func(c *httpmod.Config) { c.ReadTimeout = -time.Second }, "HTTP_READ_TIMEOUT"},
		{"negative write timeout", func(c *httpmod.Config) { c.WriteTimeout = -time.Second }, "HTTP_WRITE_TIMEOUT"},
		{"negative idle timeout", func(c *httpmod.Config) { c.IdleTimeout = -time.Second }, "HTTP_IDLE_TIMEOUT"},
		{"negative body limit", func(c *httpmod.Config) { c.MaxBodyBytes = -1 }, "HTTP_MAX_BODY_BYTES"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := httpmod.Config{}.WithDefaults()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v): got nil, want an error naming %s", c, tc.variable)
			}
			if !strings.Contains(err.Error(), tc.variable) {
				t.Errorf("Validate error: got %q, want it to name %s", err, tc.variable)
			}
		})
	}
}

func TestConfigValidate_ReportsEveryProblem(t *testing.T) {
	c := httpmod.Config{Addr: "nope", ReadHeaderTimeout: -1, ReadTimeout: -1, WriteTimeout: -1, IdleTimeout: -1, MaxBodyBytes: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate: got nil, want an error")
	}
	for _, v := range []string{"HTTP_ADDR", "HTTP_READ_HEADER_TIMEOUT", "HTTP_READ_TIMEOUT", "HTTP_WRITE_TIMEOUT", "HTTP_IDLE_TIMEOUT", "HTTP_MAX_BODY_BYTES"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("Validate error %q: missing %s", err, v)
		}
	}
}

func TestConfigValidate_AcceptsAnyHostPort(t *testing.T) {
	for _, addr := range []string{":8080", "0.0.0.0:80", "127.0.0.1:0", "[::1]:8080", "localhost:http"} {
		c := httpmod.Config{Addr: addr}.WithDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("Validate with HTTP_ADDR %q: got %v, want nil", addr, err)
		}
	}
}

func TestNew_RejectsABadConfig(t *testing.T) {
	tests := []struct {
		cfg      httpmod.Config
		variable string
	}{
		{httpmod.Config{Addr: "no-port"}, "HTTP_ADDR"},
		{httpmod.Config{ReadHeaderTimeout: -time.Second}, "HTTP_READ_HEADER_TIMEOUT"},
		{httpmod.Config{MaxBodyBytes: -5}, "HTTP_MAX_BODY_BYTES"},
	}
	for _, tc := range tests {
		t.Run(tc.variable, func(t *testing.T) {
			s, err := httpmod.New(tc.cfg, nil, nil)
			if err == nil {
				t.Fatalf("New(%+v): got a server, want an error naming %s", tc.cfg, tc.variable)
			}
			if s != nil {
				t.Errorf("New(%+v): got a server with the error, want nil", tc.cfg)
			}
			if !strings.Contains(err.Error(), tc.variable) {
				t.Errorf("New error: got %q, want it to name %s", err, tc.variable)
			}
		})
	}
}

// setHTTPEnv sets every variable of Config, so the host's own do not leak in.
func setHTTPEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	all := map[string]string{
		"HTTP_ADDR": ":8080", "HTTP_READ_HEADER_TIMEOUT": "5s", "HTTP_READ_TIMEOUT": "30s",
		"HTTP_WRITE_TIMEOUT": "30s", "HTTP_IDLE_TIMEOUT": "120s", "HTTP_MAX_BODY_BYTES": "1048576",
		"HTTP_HANDLER_TIMEOUT": "", "HTTP_TRUSTED_PROXIES": "", "HTTP_ADMIN_ADDR": "", "HTTP_ADMIN_TOKEN": "",
	}
	for k, v := range vars {
		all[k] = v
	}
	for k, v := range all {
		t.Setenv(k, v)
	}
}

func TestLoadConfig_ReadsTheEnvironment(t *testing.T) {
	setHTTPEnv(t, map[string]string{
		"HTTP_ADDR": "127.0.0.1:9090", "HTTP_READ_HEADER_TIMEOUT": "2s", "HTTP_MAX_BODY_BYTES": "4096",
	})
	got, err := httpmod.LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := httpmod.Config{
		Addr: "127.0.0.1:9090", ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxBodyBytes: 4096,
	}
	if got != want {
		t.Errorf("LoadConfig: got %+v, want %+v", got, want)
	}
}

func TestLoadConfig_ErrorNamesTheVariable(t *testing.T) {
	setHTTPEnv(t, map[string]string{"HTTP_READ_TIMEOUT": "soon"})
	_, err := httpmod.LoadConfig()
	if err == nil || !strings.Contains(err.Error(), "HTTP_READ_TIMEOUT") {
		t.Errorf("LoadConfig with HTTP_READ_TIMEOUT=soon: got %v, want an error naming HTTP_READ_TIMEOUT", err)
	}
}
