package app

import (
	"strings"
	"testing"
	"time"
)

func TestLoadConfig_Defaults(t *testing.T) {
	t.Setenv("CATGA_SERVICE", "orders")
	t.Setenv("HOSTNAME", "pod-1")
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Service != "orders" || c.Instance != "pod-1" || c.LogLevel != "info" || c.LogFormat != "json" ||
		c.StartTimeout != 15*time.Second || c.StopTimeout != 25*time.Second {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadConfig_ErrorsNameTheVariable(t *testing.T) {
	tests := []struct{ env, value, want string }{
		{"LOG_LEVEL", "loud", "LOG_LEVEL"},
		{"LOG_FORMAT", "xml", "LOG_FORMAT"},
		{"CATGA_STOP_TIMEOUT", "soon", "CATGA_STOP_TIMEOUT"},
		{"CATGA_START_TIMEOUT", "-1s", "CATGA_START_TIMEOUT"},
		{"CATGA_SERVICE", "bad.name", "CATGA_SERVICE"},
		{"CATGA_DRAIN_DELAY", "1h", "CATGA_DRAIN_DELAY"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			_, err := LoadConfig()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%s=%s: err %v, want one naming %s", tt.env, tt.value, err, tt.want)
			}
		})
	}
}

func TestLoadBusConfig_ErrorsNameTheVariable(t *testing.T) {
	t.Setenv("CATGA_MAX_DELIVER", "0")
	t.Setenv("CATGA_HANDLER_TIMEOUT", "forever")
	_, err := LoadBusConfig(Config{Service: "s", Instance: "i"})
	if err == nil || !strings.Contains(err.Error(), "CATGA_HANDLER_TIMEOUT") {
		t.Fatalf("err %v, want one naming CATGA_HANDLER_TIMEOUT", err)
	}
	t.Setenv("CATGA_HANDLER_TIMEOUT", "1s")
	_, err = LoadBusConfig(Config{Service: "s", Instance: "i"})
	if err == nil || !strings.Contains(err.Error(), "CATGA_MAX_DELIVER") {
		t.Fatalf("err %v, want one naming CATGA_MAX_DELIVER", err)
	}
}

func TestServiceName_FromBinary(t *testing.T) {
	for in, want := range map[string]string{"/bin/order-service": "order-service", "app.test": "app", "x/9lives": "app"} {
		if got := serviceName(in); got != want {
			t.Errorf("serviceName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewLogger_LevelAndFormat(t *testing.T) {
	log, err := NewLogger(Config{Service: "s", Instance: "i", LogLevel: "warn", LogFormat: "console"})
	if err != nil {
		t.Fatal(err)
	}
	if log.Core().Enabled(-1) || !log.Core().Enabled(1) {
		t.Fatal("warn logger: debug should be off and warn on")
	}
}
