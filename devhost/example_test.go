package devhost_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/catga-go/catga/devhost"
)

// The AppHost of a system: NATS with JetStream and Redis, and a service of
// three replicas that uses both. Run returns after Ctrl-C, with everything
// stopped.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	h := devhost.New()
	nats := h.NATS("nats").WithJetStream()
	redis := h.Redis("redis")
	h.Service("order-service", "./cmd/order-service").Use(nats, redis).Replicas(3)
	if err := h.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// A catga.dev.yaml that names an undeclared resource is refused before
// anything starts.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "catga-dev")
	defer os.RemoveAll(dir)
	file := dir + "/catga.dev.yaml"
	_ = os.WriteFile(file, []byte("services:\n  - name: api\n    path: ./cmd/api\n    use: [kafka]\n"), 0o644)
	_, err := devhost.Load(file, devhost.Options{})
	fmt.Println(strings.ReplaceAll(err.Error(), file, "catga.dev.yaml"))
	// Output: devhost: catga.dev.yaml: service "api" uses "kafka", which is not declared
}
