package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/catga-go/catga/scaffold"
)

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "catga",
		Short:         "Catga: typed CQRS microservices on fx, NATS JetStream and Redis Streams",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newCmd(), devCmd(), flowCmd(), versionCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of catga, from the binary's build info",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "catga", version())
			return nil
		},
	}
}

// version is the module version the binary was built from: a tag for
// "go install github.com/catga-go/catga/cmd/catga@v1.2.3", "(devel)" for a
// build in a checkout, with its VCS revision when the build recorded one.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

func newCmd() *cobra.Command {
	var o scaffold.Options
	var tidy bool
	cmd := &cobra.Command{
		Use:   "new <name>",
		Short: "Create a new service: handlers, tests, Makefile, Dockerfile, Kubernetes manifests",
		Long: `new renders a service named <name> into --dir (default ./<name>):
go.mod, cmd/<name>/main.go composing catga.Module, the transport's module and
the service's own, a sample command, query and event with handlers and tests,
a Makefile, a Dockerfile, Kubernetes manifests and a README. It refuses a
directory that is not empty unless --force. Then it runs "go mod tidy".

Run from a checkout of catga (go run ./cmd/catga new ...), the service's
go.mod points at that checkout with a replace directive.`,
		Example: "  catga new shop --transport nats\n  catga new billing --module github.com/acme/billing --transport redis --dir ./services/billing",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if o.CatgaPath == "" && o.CatgaVersion == "" {
				o.CatgaPath = checkout()
			}
			files, err := scaffold.Generate(o)
			if err != nil {
				return err
			}
			dir := o.WithDefaults().Dir
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created %s (%d files)\n", dir, len(files))
			if tidy {
				c := exec.Command("go", "mod", "tidy")
				c.Dir, c.Stdout, c.Stderr = dir, out, cmd.ErrOrStderr()
				if err := c.Run(); err != nil {
					return fmt.Errorf("go mod tidy in %s: %w (the files are written; fix and run it again)", dir, err)
				}
			}
			fmt.Fprintf(out, "next:\n  cd %s\n  make test\n  make run\n", dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Module, "module", "", "Go module path (default example.com/<name>)")
	f.StringVar(&o.Transport, "transport", "nats", "memory, nats or redis")
	f.StringVar(&o.Dir, "dir", "", "directory to write (default ./<name>)")
	f.BoolVar(&o.Force, "force", false, "write into a directory that is not empty")
	f.StringVar(&o.CatgaVersion, "catga-version", "", "catga version for go.mod (default: this CLI's checkout, else v0.0.0)")
	f.StringVar(&o.CatgaPath, "catga-path", "", "a local catga checkout to replace the module with")
	f.BoolVar(&tidy, "tidy", true, "run go mod tidy in the new service")
	return cmd
}

// checkout returns the catga checkout this binary was built from, when it
// was built from one (go run ./cmd/catga), or "".
func checkout() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module github.com/catga-go/catga\n") {
		return ""
	}
	return root
}
