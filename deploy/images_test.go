//go:build imagetest || k8se2e

package deploy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// buildImages runs make image's program for services into dir, tagged tag.
func buildImages(t *testing.T, dir, src, tag string, services ...string) {
	t.Helper()
	cmd := exec.Command("go", "run", "./cmd/image", "-out", dir, "-src", src, "-tag", tag, "-services", strings.Join(services, ","))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the images: %v\n%s", err, out)
	}
}
