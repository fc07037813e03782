package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// run builds each service of a module and writes it in both formats, as
// make image TAG=... does: <service>.docker-archive.tar tagged
// catga/<service>:<tag>, and <service>.oci holding the same image under
// that tag, labelled with the tag, revision and created time.
func TestRun_WritesBothFormatsTaggedAndLabelled(t *testing.T) {
	src := t.TempDir()
	for path, text := range map[string]string{
		"go.mod":            "module hello\n\ngo 1.26\n",
		"cmd/hello/main.go": "package main\n\nfunc main() {}\n",
	} {
		p := filepath.Join(src, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "images")
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := run(options{out: out, src: src, tag: "1.2.3", revision: "abc123", created: created, services: []string{"hello"}}); err != nil {
		t.Fatal(err)
	}

	tag, _ := name.NewTag("catga/hello:1.2.3")
	archived, err := tarball.ImageFromPath(filepath.Join(out, "hello.docker-archive.tar"), &tag)
	if err != nil {
		t.Fatalf("hello.docker-archive.tar has no image catga/hello:1.2.3: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(out, "hello.oci"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1.2.3" {
		t.Fatalf("hello.oci index %+v, want one image tagged 1.2.3", im.Manifests)
	}
	// The same image: the same config (docker's image ID) in both.
	laidOut, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := archived.ConfigName()
	o, _ := laidOut.ConfigName()
	if a != o {
		t.Errorf("hello.oci holds the image %s, the docker-archive %s: want the same", o, a)
	}
	cf, err := archived.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version":  "1.2.3",
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
	} {
		if got := cf.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
}

// The created label is -created, else SOURCE_DATE_EPOCH (reproducible
// builds), else now; the revision is the git commit, none outside git.
func TestCreatedAtAndRevision(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 500, time.UTC)
	for _, tt := range []struct {
		flag, epoch string
		want        time.Time
	}{
		{"2026-01-02T03:04:05Z", "1700000000", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"", "1700000000", time.Unix(1700000000, 0).UTC()},
		{"", "", now.Truncate(time.Second)},
	} {
		if got, err := createdAt(tt.flag, tt.epoch, now); err != nil || !got.Equal(tt.want) {
			t.Errorf("createdAt(%q, %q) = %v, %v; want %v", tt.flag, tt.epoch, got, err, tt.want)
		}
	}
	if _, err := createdAt("", "yesterday", now); err == nil {
		t.Error("SOURCE_DATE_EPOCH=yesterday accepted")
	}
	if r := gitRevision(t.TempDir()); r != "" {
		t.Errorf("revision outside git %q, want none", r)
	}
	if _, err := os.Stat("../../../.git"); err == nil {
		if r := gitRevision("."); len(r) != 40 {
			t.Errorf("revision in this checkout %q, want its commit", r)
		}
	}
}

func TestParseLDD_LibrariesAndTheLoader(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffc)\n" +
		"\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f5a)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f5b)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f5c)\n" +
		"\tlibgone.so.1 => not found\n"
	got := parseLDD(out)
	want := []string{"/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("parseLDD: %q, want %q", got, want)
	}
}
