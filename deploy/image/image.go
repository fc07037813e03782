package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the non-root user the images run as (distroless's "nonroot").
const User = "65532:65532"

// Port is the port the services listen on (HTTP_ADDR :8080).
const Port = "8080/tcp"

// AdminPort is the port of /metrics and the admin routes when
// HTTP_ADMIN_ADDR is :9090, as the manifests set it.
const AdminPort = "9090/tcp"

// License is the org.opencontainers.image.licenses label, an SPDX
// expression: the LICENSE file at the repository's root.
const License = "Apache-2.0"

// Spec says what to build.
type Spec struct {
	Service string // the image's name, and its entrypoint /<service>
	Binary  string // a static linux binary
	Version string // the org.opencontainers.image.version label: the tag
	// Revision is the org.opencontainers.image.revision label, the
	// source's commit; without one, no label.
	Revision string
	// Created is the org.opencontainers.image.created label and the
	// config's creation time; zero: the epoch, and no label.
	Created time.Time
	CACerts string // a CA bundle to include; default the host's, when present
}

// Build returns the image of s.
func Build(s Spec) (v1.Image, error) {
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("image: binary of %s: %w", s.Service, err)
	}
	files := []file{
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: 65532},
		{name: s.Service, mode: 0o755, data: bin},
	}
	ca := s.CACerts
	if ca == "" {
		ca = "/etc/ssl/certs/ca-certificates.crt"
	}
	if pem, err := os.ReadFile(ca); err == nil {
		files = append(files, file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: pem})
	}
	layerTar, err := tarOf(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	// OCI media types throughout: the layout is an OCI one, and docker
	// load reads them in a docker-archive as well.
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	if !s.Created.IsZero() {
		cf.Created = v1.Time{Time: s.Created.UTC()}
	}
	cf.Config.User = User
	cf.Config.Entrypoint = []string{"/" + s.Service}
	cf.Config.ExposedPorts = map[string]struct{}{Port: {}, AdminPort: {}}
	cf.Config.Env = []string{"HTTP_ADDR=:8080", "CATGA_SERVICE=" + s.Service}
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    s.Service,
		"org.opencontainers.image.source":   "https://github.com/catga-go/catga",
		"org.opencontainers.image.version":  s.Version,
		"org.opencontainers.image.licenses": License,
	}
	if s.Revision != "" {
		cf.Config.Labels["org.opencontainers.image.revision"] = s.Revision
	}
	if !s.Created.IsZero() {
		cf.Config.Labels["org.opencontainers.image.created"] = s.Created.UTC().Format(time.RFC3339)
	}
	return mutate.ConfigFile(img, cf)
}

// WriteDockerArchive writes img to path as a docker-archive tarball (the
// format of docker save, with its manifest.json) tagged ref, e.g.
// catga/order-service:1.0.0.
func WriteDockerArchive(path, ref string, img v1.Image) error {
	t, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image: tag %q: %w", ref, err)
	}
	return tarball.WriteToFile(path, t, img)
}

// WriteOCILayout writes img into dir, replacing what was there, as an OCI
// image layout holding this one image, annotated with ref's tag
// (org.opencontainers.image.ref.name, as skopeo's oci:DIR:TAG finds it) and
// the whole ref (io.containerd.image.name).
func WriteOCILayout(dir, ref string, img v1.Image) error {
	t, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image: tag %q: %w", ref, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": t.TagStr(),
		"io.containerd.image.name":          ref,
	}))
}

type file struct {
	name string
	mode int64
	data []byte
	dir  bool
	uid  int
}

func tarOf(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
