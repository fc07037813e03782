package deploy_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The metrics the services export (cqrs/telemetry.go, otelhttp); a panel
// that queries another name would stay empty.
var exported = map[string]bool{
	"catga_messages_handled_total": true, "catga_handler_duration_seconds_bucket": true,
	"catga_messages_in_flight": true, "catga_messages_redelivered_total": true,
	"catga_messages_dead_lettered_total": true, "catga_consumer_lag": true,
	"http_server_request_duration_seconds_count": true, "http_server_request_duration_seconds_bucket": true,
}

func TestGrafana_DashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("grafana/catga-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if len(d.Panels) < 6 {
		t.Fatalf("%d panels", len(d.Panels))
	}
	metric := regexp.MustCompile(`\b((?:catga|http)_[a-z_]+)\{`)
	seen := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metric.FindAllStringSubmatch(tg.Expr, -1) {
				if !exported[m[1]] {
					t.Errorf("panel %q queries %s, which no service exports", p.Title, m[1])
				}
				seen[m[1]] = true
			}
		}
	}
	for name := range exported {
		if !seen[name] && !strings.HasSuffix(name, "_count") {
			t.Errorf("no panel shows %s", name)
		}
	}
}
