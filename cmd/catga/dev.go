package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/catga-go/catga/devhost"
)

func devCmd() *cobra.Command {
	var o devhost.Options
	cmd := &cobra.Command{
		Use:   "dev [file]",
		Short: "Run a whole system locally from catga.dev.yaml: embedded NATS, local Redis, services x replicas",
		Long: `dev reads file (default ./catga.dev.yaml) and runs what it declares: NATS
embedded with JetStream, Redis as a redis-server child process, and each
service built once and started as its replicas, with NATS_URL, REDIS_URL,
CATGA_SERVICE, HOSTNAME and HTTP_ADDR injected. Logs are prefixed by
service/replica; a crashed replica is restarted; the status table is printed
when all are ready and on SIGUSR1, and shown live on the dashboard.
Ctrl-C stops the replicas (SIGTERM, then SIGKILL), then Redis, then NATS.`,
		Example: "  catga dev\n  catga dev ./examples/order-service/catga.dev.yaml --addr 127.0.0.1:7171",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := "catga.dev.yaml"
			if len(args) == 1 {
				file = args[0]
			}
			o.Out = cmd.OutOrStdout()
			h, err := devhost.Load(file, o)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return h.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&o.Addr, "addr", "", "dashboard address (default the file's, else 127.0.0.1:7070)")
	cmd.Flags().BoolVar(&o.Persist, "persist", false, "keep NATS and Redis data across runs")
	return cmd
}
