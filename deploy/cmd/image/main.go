// Command image builds the image of each example service into -out (make
// image): a static binary built with CGO_ENABLED=0, then image.Build, then
// <service>.docker-archive.tar (docker load, kind load image-archive) and
// <service>.oci (an OCI image layout), both tagged catga/<service>:<tag>.
// No Docker daemon is needed.
//
// The revision label is the source's git commit (-revision overrides);
// the created label is SOURCE_DATE_EPOCH when set, for reproducible
// images, else the time of the build (-created overrides).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/catga-go/catga/deploy/image"
)

// Services are the example's binaries, under examples/order-service/cmd.
var Services = []string{"order-service", "inventory-service", "payment-service", "shipping-service", "monolith"}

// Infra are the images that are not ours, built here with no base image
// when asked for by name (-services ...,nats,redis): nats-server from the
// module this one requires, redis-server and redis-cli (the readiness
// probe's) from this host with the libraries they load, and for make
// k8s-e2e's node the pod sandbox (./cmd/pause) and CoreDNS (from the
// module proxy). For a machine that reaches no registry: the image test
// and make k8s-e2e. Elsewhere the manifests' nats and redis images, and a
// cluster's own pause and DNS, are the ones to run.
var Infra = map[string]func(o options, bin string) (image.Program, error){
	"nats": natsProgram, "redis": redisProgram, "pause": pauseProgram, "coredns": corednsProgram,
}

func main() {
	o := options{}
	flag.StringVar(&o.out, "out", "../bin/images", "directory for the images")
	flag.StringVar(&o.src, "src", "../examples/order-service", "the example module")
	flag.StringVar(&o.tag, "tag", "dev", "image tag (the prod overlay pins 1.0.0)")
	flag.StringVar(&o.revision, "revision", "", "the revision label (default: the source's git commit)")
	created := flag.String("created", "", "the created label, RFC 3339 (default: SOURCE_DATE_EPOCH, else now)")
	services := flag.String("services", strings.Join(Services, ","), "the services to build, comma separated")
	flag.Parse()
	o.services = strings.Split(*services, ",")
	var err error
	if o.created, err = createdAt(*created, os.Getenv("SOURCE_DATE_EPOCH"), time.Now()); err == nil {
		if o.revision == "" {
			o.revision = gitRevision(o.src)
		}
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type options struct {
	out, src, tag, revision string
	created                 time.Time
	services                []string
}

// createdAt is flag's time, else SOURCE_DATE_EPOCH's, else now.
func createdAt(flag, epoch string, now time.Time) (time.Time, error) {
	switch {
	case flag != "":
		t, err := time.Parse(time.RFC3339, flag)
		if err != nil {
			return time.Time{}, fmt.Errorf("-created %q: want RFC 3339: %w", flag, err)
		}
		return t, nil
	case epoch != "":
		s, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds: %w", epoch, err)
		}
		return time.Unix(s, 0).UTC(), nil
	}
	return now.UTC().Truncate(time.Second), nil
}

// gitRevision is the commit checked out at dir, or "" outside a git
// work tree (the label is then left out).
func gitRevision(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func run(o options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "catga-image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	for _, s := range o.services {
		if infra, ok := Infra[s]; ok {
			p, err := infra(o, bin)
			if err != nil {
				return fmt.Errorf("build %s: %w", s, err)
			}
			img, err := image.BuildProgram(p)
			if err != nil {
				return err
			}
			if err := write(o, s, img); err != nil {
				return err
			}
			continue
		}
		binary := filepath.Join(bin, s)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, "./cmd/"+s)
		cmd.Dir, cmd.Stdout, cmd.Stderr = o.src, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", s, err)
		}
		img, err := image.Build(image.Spec{Service: s, Binary: binary, Version: o.tag, Revision: o.revision, Created: o.created})
		if err != nil {
			return err
		}
		if err := write(o, s, img); err != nil {
			return err
		}
	}
	return nil
}

// write writes img as catga/<s>:<tag>, a docker-archive and an OCI layout.
func write(o options, s string, img v1.Image) error {
	ref := "catga/" + s + ":" + o.tag
	archive, layout := filepath.Join(o.out, s+".docker-archive.tar"), filepath.Join(o.out, s+".oci")
	if err := image.WriteDockerArchive(archive, ref, img); err != nil {
		return err
	}
	if err := image.WriteOCILayout(layout, ref, img); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s (%s)\n", archive, layout, ref)
	return nil
}

// natsProgram is nats-server, built static from the module this one
// requires, run as the manifests run it (uid 1000, -c /etc/nats/nats.conf).
func natsProgram(o options, bin string) (image.Program, error) {
	binary := filepath.Join(bin, "nats-server")
	if err := goBuild(binary, "github.com/nats-io/nats-server/v2"); err != nil {
		return image.Program{}, err
	}
	return image.Program{Name: "nats", Version: o.tag, Files: map[string]string{"nats-server": binary},
		Entrypoint: []string{"/nats-server"}, Ports: []string{"4222/tcp", "6222/tcp", "8222/tcp"},
		User: "1000:1000", Dirs: []string{"data"}, Created: o.created}, nil
}

// pauseProgram is ./cmd/pause, the pod sandbox's process of make k8s-e2e's
// cluster (containerd's sandbox_image), as registry.k8s.io/pause runs.
func pauseProgram(o options, bin string) (image.Program, error) {
	binary := filepath.Join(bin, "pause")
	if err := goBuild(binary, "./cmd/pause"); err != nil {
		return image.Program{}, err
	}
	return image.Program{Name: "pause", Version: o.tag, Files: map[string]string{"pause": binary},
		Entrypoint: []string{"/pause"}, User: "65535:65535", Created: o.created}, nil
}

// corednsProgram is CoreDNS, the cluster DNS of make k8s-e2e's cluster,
// built static from the module proxy (github.com/coredns/coredns at
// CoreDNSVersion).
func corednsProgram(o options, bin string) (image.Program, error) {
	binary := filepath.Join(bin, "coredns")
	if err := goBuild(binary, "github.com/coredns/coredns@"+CoreDNSVersion); err != nil {
		return image.Program{}, err
	}
	return image.Program{Name: "coredns", Version: o.tag, Files: map[string]string{"coredns": binary},
		Entrypoint: []string{"/coredns"}, Ports: []string{"53/udp", "53/tcp"}, User: "65532:65532", Created: o.created}, nil
}

// CoreDNSVersion is the CoreDNS make k8s-e2e's cluster runs.
const CoreDNSVersion = "v1.15.0"

// goBuild builds pkg static for linux into binary; a pkg@version is
// built in module mode outside this module (go install's way).
func goBuild(binary, pkg string) error {
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", binary, pkg}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if strings.Contains(pkg, "@") {
		// go build pkg@version is not a thing: go install is, into GOBIN.
		cmd = exec.Command("go", "install", "-trimpath", "-ldflags=-s -w", pkg)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOBIN="+filepath.Dir(binary), "GOFLAGS=")
	}
	return cmd.Run()
}

// redisProgram is this host's redis-server and redis-cli with the shared
// libraries ldd says they load, run as the manifests run it (uid 999).
func redisProgram(o options, _ string) (image.Program, error) {
	files := map[string]string{}
	for _, name := range []string{"redis-server", "redis-cli"} {
		path, err := exec.LookPath(name)
		if err != nil {
			return image.Program{}, fmt.Errorf("%s is not installed here (make deps installs it): %w", name, err)
		}
		files["usr/bin/"+name] = path
		libs, err := sharedLibraries(path)
		if err != nil {
			return image.Program{}, err
		}
		for _, lib := range libs {
			files[strings.TrimPrefix(lib, "/")] = lib
		}
	}
	return image.Program{Name: "redis", Version: o.tag, Files: files,
		// Protected mode off, as the official image builds it: without it
		// a server with no password refuses every client not on loopback,
		// and the services reach it as redis:6379.
		Entrypoint: []string{"/usr/bin/redis-server", "--protected-mode", "no"}, Env: []string{"PATH=/usr/bin"}, Ports: []string{"6379/tcp"},
		User: "999:999", Dirs: []string{"data"}, Created: o.created}, nil
}

// sharedLibraries are the files ldd says binary loads, the dynamic loader
// included (the vDSO is the kernel's).
func sharedLibraries(binary string) ([]string, error) {
	out, err := exec.Command("ldd", binary).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	return parseLDD(string(out)), nil
}

// parseLDD reads ldd's lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6
// (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
func parseLDD(out string) []string {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs
}
