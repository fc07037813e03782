package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
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
	return assemble(files, s.Created, func(c *v1.Config) {
		c.User = User
		c.Entrypoint = []string{"/" + s.Service}
		c.ExposedPorts = map[string]struct{}{Port: {}, AdminPort: {}}
		c.Env = []string{"HTTP_ADDR=:8080", "CATGA_SERVICE=" + s.Service}
		c.Labels = labels(s.Service, s.Version, s.Revision, s.Created)
	})
}

// labels are the OCI labels of an image: title, source, version, licenses,
// and revision and created when known.
func labels(title, version, revision string, created time.Time) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":    title,
		"org.opencontainers.image.source":   "https://github.com/catga-go/catga",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.licenses": License,
	}
	if revision != "" {
		l["org.opencontainers.image.revision"] = revision
	}
	if !created.IsZero() {
		l["org.opencontainers.image.created"] = created.UTC().Format(time.RFC3339)
	}
	return l
}

// assemble makes an image of one layer holding files, with no base
// image, its config set by config.
func assemble(files []file, created time.Time, config func(*v1.Config)) (v1.Image, error) {
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
	if !created.IsZero() {
		cf.Created = v1.Time{Time: created.UTC()}
	}
	cf.Config.WorkingDir = "/"
	config(&cf.Config)
	return mutate.ConfigFile(img, cf)
}

// Program is the image of a server that is not ours, built here from files
// on this host with no base image: NATS and Redis, for the image test and
// a cluster on a machine that reaches no registry (make image-test, make
// k8s-e2e).
type Program struct {
	Name    string // the image's title
	Version string // the version label
	// Files are the image's files: the path in the image (no leading
	// slash) to the file on this host, read through symlinks, its mode kept.
	Files      map[string]string
	Entrypoint []string
	Env        []string
	Ports      []string // exposed, as "4222/tcp"
	User       string   // "uid:gid"
	// Dirs are empty directories owned by User, e.g. "data".
	Dirs    []string
	Created time.Time
}

// BuildProgram returns the image of p.
func BuildProgram(p Program) (v1.Image, error) {
	uid, gid, err := ids(p.User)
	if err != nil {
		return nil, fmt.Errorf("image: %s: %w", p.Name, err)
	}
	files := []file{
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/data:/sbin/nologin\n", p.Name, uid, gid, p.Name))},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", p.Name, gid))},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	for _, d := range p.Dirs {
		files = append(files, file{name: strings.Trim(d, "/") + "/", mode: 0o755, dir: true, uid: uid, gid: gid})
	}
	paths := make([]string, 0, len(p.Files))
	for path := range p.Files {
		paths = append(paths, path)
	}
	sort.Strings(paths) // the same layer for the same files
	for _, path := range paths {
		src := p.Files[path]
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", p.Name, err)
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", p.Name, err)
		}
		files = append(files, file{name: strings.TrimPrefix(path, "/"), mode: int64(st.Mode().Perm()), data: data})
	}
	ports := map[string]struct{}{}
	for _, port := range p.Ports {
		ports[port] = struct{}{}
	}
	return assemble(withParents(files), p.Created, func(c *v1.Config) {
		c.User, c.Entrypoint, c.Env, c.ExposedPorts = p.User, p.Entrypoint, p.Env, ports
		c.Labels = labels(p.Name, p.Version, "", p.Created)
	})
}

// ids parses "uid:gid".
func ids(user string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(user, ":")
	if ok {
		uid, err = strconv.Atoi(u)
	}
	if ok && err == nil {
		gid, err = strconv.Atoi(g)
	}
	if !ok || err != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("user %q: want uid:gid, numbers", user)
	}
	return uid, gid, nil
}

// withParents adds the directories files lie in that no entry makes, so
// that every path in the layer has its parents (root's, 0755), in order.
func withParents(files []file) []file {
	have := map[string]bool{}
	for _, f := range files {
		have[strings.TrimSuffix(f.name, "/")] = true
	}
	var out []file
	for _, f := range files {
		var parents []file
		for d := filepath.Dir(strings.TrimSuffix(f.name, "/")); d != "." && d != "/" && !have[d]; d = filepath.Dir(d) {
			have[d] = true
			parents = append([]file{{name: d + "/", mode: 0o755, dir: true}}, parents...)
		}
		out = append(append(out, parents...), f)
	}
	return out
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
	name     string
	mode     int64
	data     []byte
	dir      bool
	uid, gid int // gid: uid's when zero
}

func tarOf(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		gid := f.gid
		if gid == 0 {
			gid = f.uid
		}
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: gid, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Size: int64(len(f.data))}
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
