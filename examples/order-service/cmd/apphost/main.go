// Command apphost runs the whole example on one laptop: an embedded NATS
// with JetStream, a local Redis, a local PostgreSQL (order-service and
// payment-service keep their state, outbox and inbox there), and the four
// services, two replicas each,
// with their connection strings injected. make dev runs it; the order
// service answers on http://127.0.0.1:8080/ and :8081 (its two replicas),
// the dashboard is on http://127.0.0.1:7070/.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/catga-go/catga/devhost"
)

// System declares the example system on h; the order service's replicas
// listen on orderPort and the next port, or on free ports when it is 0.
func System(h *devhost.Host, orderPort int) {
	nats := h.NATS("nats").WithJetStream()
	redis := h.Redis("redis")
	pg := h.Postgres("postgres")
	for _, s := range []string{"order-service", "inventory-service", "payment-service", "shipping-service"} {
		svc := h.Service(s, "./cmd/"+s).Use(nats, redis).Replicas(2).Env("CATGA_TRANSPORT=nats", "LOG_FORMAT=console")
		switch s {
		case "order-service":
			svc.Use(pg).Port(orderPort) // orders and their events: one transaction
		case "payment-service":
			svc.Use(pg) // a charge, its inbox mark and its outcome: one transaction
		}
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := devhost.New()
	System(h, 8080)
	if err := h.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
