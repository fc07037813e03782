// Package image builds OCI image tarballs of the example services without
// a Docker daemon, with go-containerregistry: a static binary on an empty
// base plus what a static binary needs (CA certificates, a passwd entry for
// the non-root user, /tmp), the user, entrypoint, port and labels set. The
// tarball loads with "docker load" and "kind load image-archive".
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// User is the non-root user the images run as (distroless's "nonroot").
const User = "65532:65532"

// Port is the port the services listen on (HTTP_ADDR :8080).
const Port = "8080/tcp"

// Spec says what to build.
type Spec struct {
	Service string // the image's name, and its entrypoint /<service>
	Binary  string // a static linux binary
	Tag     string // e.g. catga/order-service:dev
	Version string // the org.opencontainers.image.version label
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
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()} // reproducible
	cf.Config.User = User
	cf.Config.Entrypoint = []string{"/" + s.Service}
	cf.Config.ExposedPorts = map[string]struct{}{Port: {}}
	cf.Config.Env = []string{"HTTP_ADDR=:8080", "CATGA_SERVICE=" + s.Service}
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    s.Service,
		"org.opencontainers.image.source":   "https://github.com/catga-go/catga",
		"org.opencontainers.image.version":  s.Version,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	return mutate.ConfigFile(img, cf)
}

// Write writes img as a docker-loadable tarball tagged tag.
func Write(path, tag string, img v1.Image) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image: tag %q: %w", tag, err)
	}
	return tarball.WriteToFile(path, t, img)
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
