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

	"github.com/catga-go/catga/deploy/image"
)

// Services are the example's binaries, under examples/order-service/cmd.
var Services = []string{"order-service", "inventory-service", "payment-service", "shipping-service", "monolith"}

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
		ref := "catga/" + s + ":" + o.tag
		archive, layout := filepath.Join(o.out, s+".docker-archive.tar"), filepath.Join(o.out, s+".oci")
		if err := image.WriteDockerArchive(archive, ref, img); err != nil {
			return err
		}
		if err := image.WriteOCILayout(layout, ref, img); err != nil {
			return err
		}
		fmt.Printf("wrote %s and %s (%s)\n", archive, layout, ref)
	}
	return nil
}
