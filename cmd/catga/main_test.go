package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestHelp_OnEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"new", "--help"}, {"version", "--help"}, {"dev", "--help"}, {"flow", "--help"}} {
		out, err := execute(t, args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("catga %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestVersion_PrintsBuildInfo(t *testing.T) {
	out, err := execute(t, "version")
	if err != nil || !strings.HasPrefix(out, "catga ") || strings.TrimSpace(out) == "catga" {
		t.Fatalf("version: %q, %v", out, err)
	}
}

func TestNew_WritesTheServiceAndRefusesToOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	out, err := execute(t, "new", "shop", "--dir", dir, "--tidy=false")
	if err != nil || !strings.Contains(out, "created") {
		t.Fatalf("new: %v\n%s", err, out)
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(mod), "replace github.com/catga-go/catga => ") {
		t.Errorf("run from a checkout, go.mod should replace catga with it:\n%s", mod)
	}
	if _, err := execute(t, "new", "shop", "--dir", dir, "--tidy=false"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a second new into the same directory: %v, want a refusal", err)
	}
	if _, err := execute(t, "new", "Bad_Name", "--dir", t.TempDir(), "--tidy=false"); err == nil || !strings.Contains(err.Error(), "Bad_Name") {
		t.Fatalf("a bad name: %v, want an error naming it", err)
	}
}

// catga dev refuses a file it cannot read or that names an undeclared
// resource, before starting anything.
func TestDev_RefusesABadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := execute(t, "dev", filepath.Join(dir, "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("a missing file: %v", err)
	}
	file := filepath.Join(dir, "catga.dev.yaml")
	if err := os.WriteFile(file, []byte("services:\n  - name: api\n    path: ./cmd/api\n    use: [nats]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := execute(t, "dev", file); err == nil || !strings.Contains(err.Error(), `uses "nats", which is not declared`) {
		t.Errorf("an undeclared resource: %v", err)
	}
}
