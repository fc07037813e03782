// Command image builds an OCI image tarball of each example service into
// -out (make image): a static binary built with CGO_ENABLED=0, then
// image.Build. No Docker daemon is needed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/catga-go/catga/deploy/image"
)

// Services are the example's binaries, under examples/order-service/cmd.
var Services = []string{"order-service", "inventory-service", "payment-service", "shipping-service", "monolith"}

func main() {
	out := flag.String("out", "../bin/images", "directory for the tarballs")
	src := flag.String("src", "../examples/order-service", "the example module")
	tag := flag.String("tag", "dev", "image tag")
	flag.Parse()
	if err := run(*src, *out, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(src, out, tag string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "catga-image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	for _, s := range Services {
		binary := filepath.Join(bin, s)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, "./cmd/"+s)
		cmd.Dir, cmd.Stdout, cmd.Stderr = src, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", s, err)
		}
		img, err := image.Build(image.Spec{Service: s, Binary: binary, Version: tag})
		if err != nil {
			return err
		}
		path := filepath.Join(out, s+".tar")
		if err := image.Write(path, "catga/"+s+":"+tag, img); err != nil {
			return err
		}
		fmt.Println("wrote", path, "(catga/"+s+":"+tag+")")
	}
	return nil
}
