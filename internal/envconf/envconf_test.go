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

func TestDefaults_OnlyTheTags(t *testing.T) {
	t.Setenv("TEST_ADDR", ":9999")
	t.Setenv("TEST_COUNT", "7")
	c, err := envconf.Defaults[cfg]()
	if err != nil {
		t.Fatal(err)
	}
	if c != (cfg{Addr: ":8080", Timeout: 5 * time.Second}) {
		t.Fatalf("Defaults read the environment or missed a tag: %+v", c)
	}
}

func TestDefaults_BadTag(t *testing.T) {
	type bad struct {
		N int `env:"TEST_N" envDefault:"many"`
	}
	if _, err := envconf.Defaults[bad](); err == nil || !strings.Contains(err.Error(), "TEST_N") {
		t.Fatalf("err %v, want one naming TEST_N", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustDefaults did not panic on a bad tag")
		}
	}()
	envconf.MustDefaults[bad]()
}

func TestFillZero_KeepsSetFields(t *testing.T) {
	c := cfg{Timeout: time.Second}
	envconf.FillZero(&c, cfg{Addr: ":1", Timeout: time.Minute, Count: 3})
	if c != (cfg{Addr: ":1", Timeout: time.Second, Count: 3}) {
		t.Fatalf("got %+v", c)
	}
}
