package deploy_test

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/catga-go/catga/deploy/image"
)

// buildImage builds the image of order-service from a stand-in binary.
func buildImage(t *testing.T) v1.Image {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "svc")
	if err := os.WriteFile(bin, []byte("#!not-really-a-binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := image.Build(image.Spec{Service: "order-service", Binary: bin, Version: "1.2.3",
		Revision: "0123456789abcdef0123456789abcdef01234567", Created: time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The docker-archive tarball: the user, entrypoint, ports and labels
// expected, the binary at the entrypoint, and docker load's manifest.json
// with its tag.
func TestImage_DockerArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "order-service.docker-archive.tar")
	if err := image.WriteDockerArchive(path, "catga/order-service:1.2.3", buildImage(t)); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/order-service" || cf.OS != "linux" {
		t.Errorf("config user %q entrypoint %v os %s", c.User, c.Entrypoint, cf.OS)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("exposed ports %v, want %s", c.ExposedPorts, p)
		}
	}
	want := map[string]string{
		"org.opencontainers.image.title":    "order-service",
		"org.opencontainers.image.version":  "1.2.3",
		"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
		"org.opencontainers.image.created":  "2026-05-04T03:02:01Z",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   "https://github.com/catga-go/catga",
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if !cf.Created.Time.Equal(time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)) {
		t.Errorf("config created %v, want the created label's time", cf.Created)
	}
	found := map[string]int64{}
	for name, h := range layerHeaders(t, back) {
		found[name] = h.Mode
	}
	if found["order-service"]&0o111 == 0 || found["etc/passwd"] == 0 {
		t.Errorf("layer holds %v, want an executable /order-service and /etc/passwd", found)
	}
	manifest := readTarFile(t, path, "manifest.json")
	var m []struct{ RepoTags []string }
	if err := json.Unmarshal(manifest, &m); err != nil || len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "catga/order-service:1.2.3" {
		t.Errorf("manifest.json %s: want docker load's format with the tag", manifest)
	}
}

// The OCI layout holds the same image, found by its tag as skopeo's
// oci:DIR:TAG looks it up; written again, it holds it once.
func TestImage_OCILayout(t *testing.T) {
	img := buildImage(t)
	dir := filepath.Join(t.TempDir(), "order-service.oci")
	for range 2 {
		if err := image.WriteOCILayout(dir, "catga/order-service:1.2.3", img); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "oci-layout")); err != nil || !strings.Contains(string(b), `"imageLayoutVersion"`) {
		t.Fatalf("oci-layout %s, %v", b, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", d.MediaType, types.OCIManifestSchema1)
	}
	if d.Digest != want || d.Annotations["org.opencontainers.image.ref.name"] != "1.2.3" || d.Annotations["io.containerd.image.name"] != "catga/order-service:1.2.3" {
		t.Errorf("index manifest %+v, want %s tagged 1.2.3 (catga/order-service:1.2.3)", d, want)
	}
}

// The licenses label names the license the repository's LICENSE holds.
func TestImage_LicensesLabelIsTheLICENSE(t *testing.T) {
	b, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatalf("no LICENSE at the repository root: %v", err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	if image.License != "Apache-2.0" || !strings.HasPrefix(text, "Apache License Version 2.0, January 2004") ||
		!strings.Contains(text, "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION") {
		t.Errorf("licenses label %q, LICENSE begins %.60q; want the Apache License 2.0 in both", image.License, text)
	}
	df, _ := os.ReadFile("Dockerfile")
	if !strings.Contains(string(df), `org.opencontainers.image.licenses="`+image.License+`"`) {
		t.Errorf("the Dockerfile's licenses label is not %s", image.License)
	}
}

// The Dockerfile sets the same OCI labels as make image.
func TestDockerfile_SetsTheOCILabels(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"title", "source", "version", "revision", "created", "licenses"} {
		if !strings.Contains(string(df), "org.opencontainers.image."+l+"=") {
			t.Errorf("the Dockerfile sets no org.opencontainers.image.%s", l)
		}
	}
}

// make image TAG=... tags the images with TAG (the prod overlay pins one);
// without it, dev, the base's tag.
func TestMakefile_ImageTagsWithTAG(t *testing.T) {
	for _, tt := range []struct{ args, want string }{{"TAG=1.0.0", "1.0.0"}, {"", "dev"}} {
		args := []string{"-n", "-C", "..", "image"}
		if tt.args != "" {
			args = append(args, tt.args)
		}
		out, err := exec.Command("make", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("make %v: %v\n%s", args, err, out)
		}
		f := strings.Fields(string(out))
		if i := slices.Index(f, "-tag"); !slices.Contains(f, "./cmd/image") || i < 0 || i+1 == len(f) || f[i+1] != tt.want {
			t.Errorf("make image %s runs %q, want ./cmd/image with -tag %s", tt.args, out, tt.want)
		}
	}
}

func readTarFile(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s has no %s", path, name)
		}
		if h.Name == name {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

// A program's image (NATS, Redis built here): its files under their paths
// with every parent directory, its modes, the user's own data directory,
// and the config asked for.
func TestImage_ProgramHoldsItsFilesAndParents(t *testing.T) {
	dir := t.TempDir()
	bin, lib := filepath.Join(dir, "redis-server"), filepath.Join(dir, "libc.so.6")
	for _, f := range []string{bin, lib} {
		if err := os.WriteFile(f, []byte("#!not-really"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img, err := image.BuildProgram(image.Program{Name: "redis", Version: "dev",
		Files:      map[string]string{"usr/bin/redis-server": bin, "lib/x86_64-linux-gnu/libc.so.6": lib},
		Entrypoint: []string{"/usr/bin/redis-server"}, Env: []string{"PATH=/usr/bin"}, Ports: []string{"6379/tcp"},
		User: "999:999", Dirs: []string{"data"}})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if c := cf.Config; c.User != "999:999" || !slices.Equal(c.Entrypoint, []string{"/usr/bin/redis-server"}) || !slices.Equal(c.Env, []string{"PATH=/usr/bin"}) {
		t.Errorf("config user %q entrypoint %v env %v", c.User, c.Entrypoint, c.Env)
	}
	if _, ok := cf.Config.ExposedPorts["6379/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 6379/tcp", cf.Config.ExposedPorts)
	}
	type entry struct {
		mode     int64
		uid, gid int
		dir      bool
	}
	found := map[string]entry{}
	for name, h := range layerHeaders(t, img) {
		found[strings.TrimSuffix(name, "/")] = entry{h.Mode, h.Uid, h.Gid, h.Typeflag == tar.TypeDir}
	}
	for _, d := range []string{"usr", "usr/bin", "lib", "lib/x86_64-linux-gnu", "tmp"} {
		if !found[d].dir {
			t.Errorf("no directory %s in the layer (%v)", d, found)
		}
	}
	if e := found["usr/bin/redis-server"]; e.mode&0o111 == 0 || e.dir {
		t.Errorf("usr/bin/redis-server %+v, want an executable file", e)
	}
	if e := found["data"]; !e.dir || e.uid != 999 || e.gid != 999 {
		t.Errorf("data %+v, want a directory of 999:999", e)
	}
	if _, err := image.BuildProgram(image.Program{Name: "x", User: "nobody"}); err == nil || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("user nobody: %v, want an error naming it", err)
	}
}

// layerHeaders are the tar headers of img's one layer, by name.
func layerHeaders(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}
