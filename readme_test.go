package catga_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The README's 20-line service must build as it is printed.
func TestREADME_ServiceBuilds(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## A service in 20 lines")
	if !ok {
		t.Fatal("README has no '## A service in 20 lines' section")
	}
	_, code, ok := strings.Cut(after, "```go\n")
	code, _, ok2 := strings.Cut(code, "```")
	if !ok || !ok2 {
		t.Fatal("the section has no go code block")
	}
	if n := strings.Count(strings.TrimSpace(code), "\n") + 1; n > 35 {
		t.Errorf("the service is %d lines", n)
	}
	root, _ := filepath.Abs(".")
	dir := t.TempDir()
	gomod := "module readme\n\ngo 1.26\n\nrequire github.com/catga-go/catga v0.0.0\n\nreplace github.com/catga-go/catga => " + root + "\n"
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": gomod, "go.sum": string(sum), "main.go": code} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", os.DevNull, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
