package devhost

import (
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"time"
)

var page = template.Must(template.New("dashboard").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>catga dev</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222 }
table { border-collapse: collapse } th, td { padding: .35rem .8rem; border-bottom: 1px solid #ddd; text-align: left }
.ready { color: #0a7d28; font-weight: 600 } .notready { color: #b3261e; font-weight: 600 }
</style></head><body>
<h1>catga dev</h1>
<p id="summary">{{.Ready}} of {{.Total}} replicas ready</p>
<table id="replicas">
<tr><th>service</th><th>replica</th><th>pid</th><th>address</th><th>ready</th><th>restarts</th><th>links</th></tr>
{{range .Rows}}<tr data-service="{{.Service}}" data-replica="{{.Replica}}" data-ready="{{.Ready}}">
<td>{{.Service}}</td><td>{{.Replica}}</td><td>{{.PID}}</td><td>{{.Addr}}</td>
<td class="{{if .Ready}}ready{{else}}notready{{end}}">{{if .Ready}}ready{{else}}not ready{{end}}</td>
<td>{{.Restarts}}</td>
<td>{{if .Addr}}<a href="http://{{.Addr}}/health">/health</a> <a href="http://{{.Addr}}/ready">/ready</a> <a href="http://{{.Addr}}/metrics">/metrics</a>{{end}}</td></tr>
{{end}}</table>
<p><a href="/api/status">/api/status</a> (JSON) · refreshed every 2s</p>
</body></html>
`))

// serveDashboard serves "/" and "/api/status" on Options.Addr.
func (h *Host) serveDashboard() (func(), error) {
	ln, err := net.Listen("tcp", h.opts.Addr)
	if err != nil {
		return nil, errors.New("devhost: dashboard on " + h.opts.Addr + ": " + err.Error() + " (set another address)")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h.Status())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		rows := h.Status()
		ready := 0
		for _, r := range rows {
			if r.Ready {
				ready++
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"Rows": rows, "Ready": ready, "Total": len(rows)})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	h.mu.Lock()
	h.dash = ln
	h.mu.Unlock()
	h.out.system("host", "dashboard on http://%s/", ln.Addr())
	return func() { _ = srv.Close(); <-done }, nil
}
