package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/catga-go/catga/cqrs/flow"
)

// flowCmd reads one flow instance from a service's flow.Handler.
func flowCmd() *cobra.Command {
	var raw bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "flow <url> <flow> <key>",
		Short: "Show a flow instance's state and history, from the service's flow.Handler at url",
		Long: `Show one instance of a flow (a saga): its state and the steps it took, read
from the flow.Handler the service mounts at url (for example
http://localhost:8080/flows). --json prints the answer as it came.`,
		Example: "  catga flow http://localhost:8080/flows checkout 01JD...",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			base, name, key := strings.TrimRight(args[0], "/"), args[1], args[2]
			if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("flow: %q is not an http(s) URL", args[0])
			}
			client := &http.Client{Timeout: timeout}
			res, err := client.Get(base + "/" + url.PathEscape(name) + "/" + url.PathEscape(key))
			if err != nil {
				return fmt.Errorf("flow: %w", err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
			if err != nil {
				return fmt.Errorf("flow: reading the answer: %w", err)
			}
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("flow %s %s: %s: %s", name, key, res.Status, strings.TrimSpace(string(body)))
			}
			out := cmd.OutOrStdout()
			if raw {
				_, err := out.Write(body)
				return err
			}
			var in flow.Instance
			if err := json.Unmarshal(body, &in); err != nil {
				return fmt.Errorf("flow: the answer is not a flow instance: %w", err)
			}
			fmt.Fprintf(out, "%s %s: version %d, started %s, updated %s\n", in.Flow, in.Key, in.Version,
				in.Created.Format(time.RFC3339), in.Updated.Format(time.RFC3339))
			fmt.Fprintf(out, "state: %s\n", in.State)
			for i, e := range in.History {
				fmt.Fprintf(out, "%3d  %s  %-24s %s", i+1, e.At.Format("2006-01-02T15:04:05.000Z07:00"), e.Step, e.MessageID)
				if e.Note != "" {
					fmt.Fprintf(out, "  %s", e.Note)
				}
				fmt.Fprintln(out)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&raw, "json", false, "print the JSON answer as it is")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the service")
	return cmd
}
