package deploy_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/catga-go/catga/scaffold"
)

// A new service's deploy/k8s (catga new) builds and decodes strictly, has
// the recommended labels, the Services its env reaches, the admin port
// scraped and the probes on the API's, a pinned tag, and, with NATS, a
// one-node config that serves JetStream.
func TestScaffold_ManifestsBuildAndServe(t *testing.T) {
	for _, transport := range []string{"memory", "nats", "redis"} {
		t.Run(transport, func(t *testing.T) {
			name := "shop-" + transport
			dir := filepath.Join(t.TempDir(), name)
			if _, err := scaffold.Generate(scaffold.Options{Name: name, Transport: transport, Dir: dir}); err != nil {
				t.Fatal(err)
			}
			o := build(t, filepath.Join(dir, "deploy", "k8s"))
			checkLabels(t, name, o, name)
			d := o.deployments[name]
			if d == nil {
				t.Fatalf("no Deployment %s", name)
			}
			c := d.Spec.Template.Spec.Containers[0]
			if c.Image != name+":"+scaffold.Version {
				t.Errorf("image %s, want %s:%s", c.Image, name, scaffold.Version)
			}
			for _, v := range []string{"NATS_URL", "REDIS_URL"} {
				e, ok := env(c, v)
				if !ok {
					continue
				}
				host := strings.Split(strings.SplitN(e.Value, "://", 2)[1], ":")[0]
				if o.services[host] == nil {
					t.Errorf("%s=%s: the manifests have no Service %s", v, e.Value, host)
				}
			}
			if e, _ := env(c, "HTTP_ADMIN_ADDR"); e.Value != ":9090" || containerPort(c, "metrics") != 9090 ||
				d.Spec.Template.Annotations["prometheus.io/port"] != "9090" {
				t.Errorf("HTTP_ADMIN_ADDR %q, metrics port %d, scrape port %q; want 9090 for all", e.Value, containerPort(c, "metrics"), d.Spec.Template.Annotations["prometheus.io/port"])
			}
			if c.ReadinessProbe.HTTPGet.Port.String() != "http" || c.LivenessProbe.HTTPGet.Port.String() != "http" || containerPort(c, "http") != 8080 {
				t.Error("the probes are not on the API's port http (8080)")
			}
			if transport == "nats" {
				runSingleNode(t, name, o.statefulSets["nats"], natsConf(t, o))
			}
		})
	}
}
