package envconf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/catga-go/catga/internal/envconf"
)

type cfg struct {
	Addr    string        `env:"TEST_ADDR" envDefault:":8080"`
	Timeout time.Duration `env:"TEST_TIMEOUT" envDefault:"5s"`
	Count   int           `env:"TEST_COUNT"`
}

func TestLoad_DefaultsAndValues(t *testing.T) {
	t.Setenv("TEST_COUNT", "7")
	c, err := envconf.Load[cfg]()
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.Timeout != 5*time.Second || c.Count != 7 {
		t.Fatalf("got %+v", c)
	}
}

func TestLoad_ErrorNamesTheVariable(t *testing.T) {
	t.Setenv("TEST_TIMEOUT", "soon")
	t.Setenv("TEST_COUNT", "many")
	_, err := envconf.Load[cfg]()
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, want := range []string{"TEST_TIMEOUT", "TEST_COUNT", `"soon"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "Timeout") {
		t.Errorf("error %q names the Go field", err)
	}
}
