// Package deploy_test validates deploy/: every kustomization (and a new
// service's, from scaffold) builds, every manifest decodes strictly into
// its k8s.io/api type, every object carries the recommended labels, the
// probes and ports are the ones the services serve, the NATS configs run
// in a real nats-server and serve JetStream, the images carry the expected
// user, entrypoint, ports and labels, the Dockerfile builds binaries that
// exist, and the docs say what the manifests need.
package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/catga-go/catga/deploy/image"
)

var services = []string{"order-service", "inventory-service", "payment-service", "shipping-service"}

// objects is a kustomization built and decoded.
type objects struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs         map[string]*policyv1.PodDisruptionBudget
	configMaps   map[string]*corev1.ConfigMap
	namespaces   int
	all          []object // every object, in build order
}

// object is what every kind has: its labels, and a workload's pod
// template labels, selector and images.
type object struct {
	kind, name string
	labels     map[string]string
	template   map[string]string // nil: not a workload
	selector   map[string]string
	images     []string
}

func (o object) String() string { return o.kind + " " + o.name }

func workload(kind string, m metav1.ObjectMeta, sel *metav1.LabelSelector, pt corev1.PodTemplateSpec) object {
	w := object{kind: kind, name: m.Name, labels: m.Labels, template: pt.Labels, selector: sel.MatchLabels}
	if w.template == nil {
		w.template = map[string]string{}
	}
	for _, c := range pt.Spec.Containers {
		w.images = append(w.images, c.Image)
	}
	return w
}

// build runs kustomize on dir and decodes every resource strictly: an
// unknown or misspelt field fails.
func build(t *testing.T, dir string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := objects{deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		services: map[string]*corev1.Service{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, r := range res.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		strict := func(v any) {
			if err := yaml.UnmarshalStrict(data, v); err != nil {
				t.Fatalf("%s %s does not decode strictly: %v", r.GetKind(), r.GetName(), err)
			}
		}
		switch gvk := r.GetGvk(); gvk.Group + "/" + gvk.Version + "/" + gvk.Kind {
		case "apps/v1/Deployment":
			v := &appsv1.Deployment{}
			strict(v)
			o.deployments[v.Name] = v
			o.all = append(o.all, workload(v.Kind, v.ObjectMeta, v.Spec.Selector, v.Spec.Template))
			continue
		case "apps/v1/StatefulSet":
			v := &appsv1.StatefulSet{}
			strict(v)
			o.statefulSets[v.Name] = v
			o.all = append(o.all, workload(v.Kind, v.ObjectMeta, v.Spec.Selector, v.Spec.Template))
			continue
		case "/v1/Service":
			v := &corev1.Service{}
			strict(v)
			o.services[v.Name] = v
		case "/v1/ConfigMap":
			v := &corev1.ConfigMap{}
			strict(v)
			o.configMaps[v.Name] = v
		case "/v1/Namespace":
			strict(&corev1.Namespace{})
			o.namespaces++
		case "autoscaling/v2/HorizontalPodAutoscaler":
			v := &autoscalingv2.HorizontalPodAutoscaler{}
			strict(v)
			o.hpas[v.Name] = v
		case "policy/v1/PodDisruptionBudget":
			v := &policyv1.PodDisruptionBudget{}
			strict(v)
			o.pdbs[v.Name] = v
		default:
			t.Fatalf("unexpected kind %v (%s)", gvk, r.GetName())
		}
		o.all = append(o.all, object{kind: r.GetKind(), name: r.GetName(), labels: r.GetLabels()})
	}
	return o
}

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

func TestBase_ServicesAreDeployedAsTheyServe(t *testing.T) {
	o := build(t, "k8s/base")
	for _, s := range services {
		d := o.deployments[s]
		if d == nil {
			t.Fatalf("no Deployment %s", s)
		}
		if *d.Spec.Replicas != 3 {
			t.Errorf("%s: %d replicas, want 3", s, *d.Spec.Replicas)
		}
		ps := d.Spec.Template.Spec
		c := ps.Containers[0]
		if len(c.Ports) != 2 || c.Ports[0].ContainerPort != 8080 || c.Ports[0].Name != "http" ||
			c.Ports[1].ContainerPort != 9090 || c.Ports[1].Name != "metrics" {
			t.Errorf("%s: ports %+v, want http 8080 and metrics 9090", s, c.Ports)
		}
		if e, _ := env(c, "HTTP_ADDR"); e.Value != ":8080" {
			t.Errorf("%s: HTTP_ADDR %q, want :8080 (the port the probes use)", s, e.Value)
		}
		// HTTP_ADMIN_ADDR set, /metrics and the admin routes are served
		// there only: the scrape must go there, the probes stay on http.
		if e, _ := env(c, "HTTP_ADMIN_ADDR"); e.Value != ":9090" {
			t.Errorf("%s: HTTP_ADMIN_ADDR %q, want :9090", s, e.Value)
		}
		if a := d.Spec.Template.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9090" || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s: pod annotations %v, want Prometheus to scrape /metrics on 9090", s, a)
		}
		if e, _ := env(c, "CATGA_SERVICE"); e.Value != s {
			t.Errorf("%s: CATGA_SERVICE %q", s, e.Value)
		}
		if e, _ := env(c, "HOSTNAME"); e.ValueFrom == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
			t.Errorf("%s: HOSTNAME is not the pod name", s)
		}
		for _, v := range []string{"NATS_URL", "REDIS_URL"} {
			if e, ok := env(c, v); !ok || e.Value == "" {
				t.Errorf("%s: no %s", s, v)
			}
		}
		if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/ready" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: readiness probe %+v, want GET /ready on http", s, p)
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: liveness probe %+v, want GET /health on http", s, p)
		}
		stop := 25 * time.Second
		if e, ok := env(c, "CATGA_STOP_TIMEOUT"); ok {
			stop, _ = time.ParseDuration(e.Value)
		}
		pause := time.Duration(0)
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
			t.Errorf("%s: no preStop pause", s)
		} else {
			pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if grace := time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second; grace <= stop+pause {
			t.Errorf("%s: terminationGracePeriodSeconds %v, want above the stop timeout %v plus the pause %v", s, grace, stop, pause)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v, want requests and a memory limit", s, c.Resources)
		}
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
			c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("%s: not a non-root security context", s)
		}
		if uid := ps.SecurityContext.RunAsUser; uid == nil || fmt.Sprint(*uid)+":"+fmt.Sprint(*uid) != image.User {
			t.Errorf("%s: runAsUser %v, want the image's user %s", s, uid, image.User)
		}
		if !strings.HasPrefix(c.Image, "catga/"+s+":") {
			t.Errorf("%s: image %q", s, c.Image)
		}
		svc := o.services[s]
		if svc == nil || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" || svc.Spec.Selector["app"] != s {
			t.Errorf("%s: Service %+v", s, svc)
		}
		h := o.hpas[s]
		if h == nil || *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 10 || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 ||
			h.Spec.ScaleTargetRef.Name != s {
			t.Errorf("%s: HPA %+v, want CPU 70%% from 3 to 10", s, h)
		}
		if o.pdbs[s] == nil {
			t.Errorf("%s: no PodDisruptionBudget", s)
		}
	}
}

func TestBase_NATSIsAClusteredJetStreamOfThree(t *testing.T) {
	o := build(t, "k8s/base")
	n := o.statefulSets["nats"]
	if n == nil || *n.Spec.Replicas != 3 || len(n.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("nats StatefulSet %+v, want 3 replicas with a volume claim", n)
	}
	conf := natsConf(t, o)
	for _, want := range []string{"jetstream", "store_dir: /data", "cluster", "nats-0.nats-cluster:6222", "nats-2.nats-cluster:6222"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	if o.services["nats-cluster"].Spec.ClusterIP != "None" || o.services["nats"] == nil {
		t.Error("want a headless nats-cluster Service and a nats client Service")
	}
	if r := o.statefulSets["redis"]; r == nil || !strings.Contains(strings.Join(r.Spec.Template.Spec.Containers[0].Args, " "), "--appendonly yes") {
		t.Error("redis: want a StatefulSet with AOF")
	}
}

func TestOverlays(t *testing.T) {
	dev := build(t, "k8s/overlays/dev")
	for _, s := range services {
		d := dev.deployments[s]
		if *d.Spec.Replicas != 1 {
			t.Errorf("dev %s: %d replicas, want 1", s, *d.Spec.Replicas)
		}
		if lim := d.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); lim != "128Mi" {
			t.Errorf("dev %s: memory limit %s, want 128Mi", s, lim)
		}
	}
	if *dev.statefulSets["nats"].Spec.Replicas != 1 {
		t.Error("dev: want one NATS")
	}
	prod := build(t, "k8s/overlays/prod")
	for _, s := range services {
		c := prod.deployments[s].Spec.Template.Spec.Containers[0]
		if e, _ := env(c, "NATS_STREAM_REPLICAS"); e.Value != "3" {
			t.Errorf("prod %s: NATS_STREAM_REPLICAS %q, want 3", s, e.Value)
		}
		if !strings.HasSuffix(c.Image, ":1.0.0") {
			t.Errorf("prod %s: image %s, want a pinned tag", s, c.Image)
		}
	}
}

// The Dockerfile builds ./cmd/${SERVICE} of the example; each service the
// manifests deploy must be one.
func TestDockerfile_BuildsBinariesThatExist(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`go build .* \./cmd/\$\{SERVICE\}`).Find(df)
	if m == nil {
		t.Fatal("the Dockerfile does not build ./cmd/${SERVICE}")
	}
	if !strings.Contains(string(df), "cd examples/order-service") {
		t.Fatal("the Dockerfile does not build in examples/order-service")
	}
	for _, s := range append(services, "monolith") {
		if _, err := os.Stat(filepath.Join("..", "examples", "order-service", "cmd", s, "main.go")); err != nil {
			t.Errorf("SERVICE=%s: %v", s, err)
		}
	}
}

// The Dockerfile's build context (the repository root) leaves out the
// images make image writes into bin/, and .git, and keeps what the build
// copies: the root module and the example.
func TestDockerfile_ContextLeavesOutTheImages(t *testing.T) {
	b, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	// As docker matches: a pattern from the root, **/ any directories
	// above; a match of a directory leaves out what is under it.
	ignored := func(rel string) bool {
		for p := rel; p != "."; p = filepath.Dir(p) {
			for _, pat := range patterns {
				if base, ok := strings.CutPrefix(pat, "**/"); ok {
					if m, _ := filepath.Match(base, filepath.Base(p)); m {
						return true
					}
				} else if m, _ := filepath.Match(pat, p); m {
					return true
				}
			}
		}
		return false
	}
	for _, p := range []string{"bin/images/order-service.docker-archive.tar", ".git/HEAD", "examples/order-service/.catga/dev/nats"} {
		if !ignored(p) {
			t.Errorf("the build context sends %s", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "catga.go", "cqrs/bus.go", "examples/order-service/go.mod",
		"examples/order-service/cmd/order-service/main.go", "modules/natsmod/transport.go"} {
		if ignored(p) {
			t.Errorf("the build context leaves out %s, which the build needs", p)
		}
	}
}
