package deploy_test

import (
	"os"
	"strings"
	"testing"
)

// section returns the "## title" section of a Markdown file.
func section(t *testing.T, path, title string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", path, title)
	}
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	return after
}

// The docs say what the manifests and the images need: the Kubernetes
// version (the preStop sleep), the tag make image builds, and, for a new
// service, vendoring when go.mod replaces catga with a local checkout.
func TestDocs_SayWhatTheManifestsNeed(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	deploying := section(t, "../README.md", "Deploying")
	for what, text := range map[string]string{"deploy/README.md": string(readme), "README.md's Deploying": deploying} {
		for _, want := range []string{"Kubernetes 1.30", "preStop", "make image TAG=1.0.0", "HTTP_ADMIN_ADDR", "docker-archive", "OCI"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not say %q", what, want)
			}
		}
	}
	for _, want := range []string{"go mod vendor", ".dockerignore", "replace"} {
		if !strings.Contains(deploying, want) {
			t.Errorf("README.md's Deploying does not say %q (what a new service's Dockerfile needs)", want)
		}
	}
	if strings.Contains(deploying, ":latest") {
		t.Error("README.md's Deploying tags an image latest")
	}
}
