//go:build imagetest || k8se2e

package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// getJSONWith GETs url with client and decodes a 200's JSON body into v.
func getJSONWith(client *http.Client, url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
