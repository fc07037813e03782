// Command svc is the service the devhost tests run: it serves /health,
// /ready, /metrics and /env (its environment as JSON) on HTTP_ADDR, and
// exits on SIGTERM unless SVC_IGNORE_TERM is set.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv("SVC_IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/health", ok)
	mux.HandleFunc("/ready", ok)
	mux.HandleFunc("/metrics", ok)
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_ = json.NewEncoder(w).Encode(env)
	})
	srv := &http.Server{Addr: os.Getenv("HTTP_ADDR"), Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		fmt.Println("SIGTERM: stopping")
		_ = srv.Shutdown(context.Background())
	}()
	fmt.Println("listening on", srv.Addr, "as", os.Getenv("HOSTNAME"))
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	time.Sleep(10 * time.Millisecond)
}
