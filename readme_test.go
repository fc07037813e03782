package catga_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's 20-line service must build as it is printed.
func TestREADME_ServiceBuilds(t *testing.T) {
	readme := readREADME(t)
	_, after, ok := strings.Cut(readme, "## A service in 20 lines")
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
	dir := readmeModule(t, "readme", map[string]string{"main.go": code})
	goRun(t, dir, "mod", "tidy")
	goRun(t, dir, "build", "-o", os.DevNull, ".")
}

// readmeFileLabel is the first line of a README go block that is a file of
// the example module: "// orders/orders.go".
var readmeFileLabel = regexp.MustCompile(`^// ((?:[a-z0-9_]+/)*[a-z0-9_]+\.go)\n`)

// The README's files (each a go block whose first line names its path) are
// one module, example.com/shop, imported as they are printed: it must
// build, pass go vet and pass its tests. A go block that is a whole file
// (it has a package clause) must be one of them, or the 20-line service.
func TestREADME_FilesBuildAndPass(t *testing.T) {
	readme := readREADME(t)
	_, service, _ := strings.Cut(readme, "## A service in 20 lines")
	service, _, _ = strings.Cut(service, "\n## ")
	files := map[string]string{}
	for _, code := range goBlocks(readme) {
		m := readmeFileLabel.FindStringSubmatch(code)
		switch {
		case m != nil:
			if _, dup := files[m[1]]; dup {
				t.Errorf("README has two go blocks for %s", m[1])
			}
			files[m[1]] = code
		case regexp.MustCompile(`(?m)^package `).MatchString(code) && !strings.Contains(service, code):
			first, _, _ := strings.Cut(code, "\n")
			t.Errorf("README go block %q is a file with no '// path.go' first line, so no test builds it", first)
		}
	}
	want := []string{"billing/billing.go", "cmd/billing/main.go", "contracts/contracts.go",
		"orders/config.go", "orders/orders.go", "orders/orders_test.go"}
	for _, name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("README has no go block for %s", name)
		}
	}
	if t.Failed() {
		return
	}
	dir := readmeModule(t, "example.com/shop", files)
	goRun(t, dir, "mod", "tidy")
	goRun(t, dir, "vet", "./...")
	if out := goRun(t, dir, "test", "-count=1", "./..."); !strings.Contains(out, "ok  \texample.com/shop/orders") {
		t.Errorf("the README's tests did not run:\n%s", out)
	}
}

func readREADME(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(readme)
}

// goBlocks returns the bodies of the README's go code blocks.
func goBlocks(readme string) []string {
	var blocks []string
	for {
		_, rest, ok := strings.Cut(readme, "```go\n")
		if !ok {
			return blocks
		}
		code, after, ok := strings.Cut(rest, "```")
		if !ok {
			return blocks
		}
		blocks = append(blocks, code)
		readme = after
	}
}

// readmeModule writes files into a new module named module that requires
// this checkout, and returns its directory.
func readmeModule(t *testing.T, module string, files map[string]string) string {
	t.Helper()
	root, _ := filepath.Abs(".")
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	all := map[string]string{
		"go.mod": "module " + module + "\n\ngo 1.26\n\nrequire github.com/catga-go/catga v0.0.0\n\nreplace github.com/catga-go/catga => " + root + "\n",
		"go.sum": string(sum),
	}
	for name, body := range files {
		all[name] = body
	}
	for name, body := range all {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func goRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The README's saga is under 40 lines, as the README promises a reader.
func TestREADME_SagaUnder40Lines(t *testing.T) {
	_, after, ok := strings.Cut(readREADME(t), "## Sagas")
	if !ok {
		t.Fatal("README has no '## Sagas' section")
	}
	_, code, ok := strings.Cut(after, "```go\n")
	code, _, ok2 := strings.Cut(code, "```")
	if !ok || !ok2 || !strings.Contains(code, "flow.New[") || !strings.Contains(code, "flow.Start(") {
		t.Fatal("the section has no go block declaring a flow")
	}
	if n := strings.Count(strings.TrimSpace(code), "\n") + 1; n >= 40 {
		t.Errorf("the saga is %d lines, want under 40", n)
	}
}
