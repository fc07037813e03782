//go:build imagetest

// The image test (make image-test): every image, built here, run under
// podman as the dev overlay's manifests run it. Not part of make test
// (it builds and runs containers; a minute or two); make image-test
// installs podman and runc when missing and runs it.

package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/catga-go/catga/deploy/image"
	"github.com/catga-go/catga/scaffold"
)

// limits are the resource limits these machines allow a container: podman's
// defaults raise them, which the kernel refuses here ("setrlimit: Operation
// not permitted"); runc, not crun, starts containers here.
var limits = []string{"--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// pod is a container the test runs: its name (as the manifests' pod
// name and Service name), and the host ports of its container ports.
type pod struct {
	name  string
	ports map[int32]string // container port -> 127.0.0.1:<host port>
	spec  corev1.Container
	grace int64
}

type podman struct {
	t   *testing.T
	net string
	tag string
}

// run runs podman with args, failing the test with its output on error.
func (p *podman) run(args ...string) string {
	p.t.Helper()
	out, err := p.try(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p *podman) try(args ...string) (string, error) {
	cmd := exec.Command("podman", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// start runs c of a pod named name, behind the Service service, as the
// manifests do: the pod's user,
// the container's security context (read-only root, capabilities dropped,
// no privilege escalation), its args and environment (a fieldRef to
// metadata.name is the pod's name), mounts, each container port published
// on loopback; on the test's network, where the other pods reach it by
// name.
func (p *podman) start(name, service, img string, c corev1.Container, sc *corev1.PodSecurityContext, grace int64, mounts ...string) *pod {
	p.t.Helper()
	args := append([]string{"run", "-d", "--name", name, "--network", p.net, "--network-alias", service}, limits...)
	if sc != nil && sc.RunAsUser != nil {
		gid := *sc.RunAsUser
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
		args = append(args, "--user", fmt.Sprintf("%d:%d", *sc.RunAsUser, gid))
	}
	if s := c.SecurityContext; s != nil {
		if s.ReadOnlyRootFilesystem != nil && *s.ReadOnlyRootFilesystem {
			args = append(args, "--read-only", "--read-only-tmpfs=false")
		}
		if s.AllowPrivilegeEscalation != nil && !*s.AllowPrivilegeEscalation {
			args = append(args, "--security-opt", "no-new-privileges")
		}
		if s.Capabilities != nil {
			for _, d := range s.Capabilities.Drop {
				args = append(args, "--cap-drop", string(d))
			}
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				p.t.Fatalf("%s: env %s comes from %+v, which the test does not know", name, e.Name, e.ValueFrom)
			}
			v = name
		}
		args = append(args, "--env", e.Name+"="+v)
	}
	for _, port := range c.Ports {
		args = append(args, "--publish", fmt.Sprintf("127.0.0.1::%d", port.ContainerPort))
	}
	for _, m := range mounts {
		args = append(args, "--volume", m)
	}
	args = append(args, img)
	args = append(args, c.Args...)
	p.run(args...)
	p.t.Cleanup(func() { _, _ = p.try("rm", "-f", "-t", "0", name) })
	pd := &pod{name: name, ports: map[int32]string{}, spec: c, grace: grace}
	for _, port := range c.Ports {
		hp := p.run("port", name, fmt.Sprintf("%d/tcp", port.ContainerPort))
		pd.ports[port.ContainerPort] = strings.TrimSpace(strings.Split(hp, "\n")[0])
	}
	return pd
}

// port is the host address of a named container port.
func (pd *pod) port(t *testing.T, name string) string {
	t.Helper()
	for _, p := range pd.spec.Ports {
		if p.Name == name {
			return pd.ports[p.ContainerPort]
		}
	}
	t.Fatalf("%s has no port %s", pd.name, name)
	return ""
}

// waitReady runs the pod's readiness probe, as the kubelet would, until it
// passes: an HTTP GET below 400, or an exec that exits 0.
func (p *podman) waitReady(pd *pod, within time.Duration) {
	p.t.Helper()
	probe := pd.spec.ReadinessProbe
	if probe == nil {
		p.t.Fatalf("%s has no readiness probe", pd.name)
	}
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		switch {
		case probe.HTTPGet != nil:
			url := "http://" + pd.port(p.t, probe.HTTPGet.Port.String()) + probe.HTTPGet.Path
			if probe.HTTPGet.Port.IntValue() != 0 {
				url = "http://" + pd.ports[int32(probe.HTTPGet.Port.IntValue())] + probe.HTTPGet.Path
			}
			resp, err := http.Get(url)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 {
					return
				}
				last = fmt.Sprintf("%s: %d %s", url, resp.StatusCode, b)
			} else {
				last = err.Error()
			}
		case probe.Exec != nil:
			out, err := p.try(append([]string{"exec", pd.name}, probe.Exec.Command...)...)
			if err == nil {
				return
			}
			last = fmt.Sprintf("%v: %s", err, out)
		default:
			p.t.Fatalf("%s: a readiness probe the test does not know: %+v", pd.name, probe)
		}
		time.Sleep(200 * time.Millisecond)
	}
	logs, _ := p.try("logs", "--tail", "30", pd.name)
	p.t.Fatalf("%s not ready within %v: %s\nits last log lines:\n%s", pd.name, within, last, logs)
}

// stop sends SIGTERM (podman stop) with the pod's grace period and says
// how long it took; the container must exit 0 within it.
func (p *podman) stop(pd *pod) time.Duration {
	p.t.Helper()
	start := time.Now()
	p.run("stop", "-t", fmt.Sprint(pd.grace), pd.name)
	took := time.Since(start)
	code := p.run("inspect", "--format", "{{.State.ExitCode}}", pd.name)
	if code != "0" || took >= time.Duration(pd.grace)*time.Second {
		logs, _ := p.try("logs", "--tail", "20", pd.name)
		p.t.Errorf("%s: podman stop took %v (grace %ds), exit code %s; want 0 within the grace period\n%s", pd.name, took.Round(time.Millisecond), pd.grace, code, logs)
	}
	return took
}

// hostDir is a directory to mount, owned by uid (a volume with fsGroup).
func hostDir(t *testing.T, uid int64) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chown(d, int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
	return d
}

func lookPath(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: make image-test installs podman and runc from the system's packages (Debian: apt-get install podman runc)", n)
		}
	}
}

// TestImages_RunUnderPodmanAsTheManifestsRunThem: NATS and Redis (images
// built here), then the four services, each as the dev overlay runs it;
// every /health and /ready answers; orders posted to order-service ship;
// podman stop (SIGTERM) ends each with exit 0 within its grace period; a
// new service from catga new goes through the same.
func TestImages_RunUnderPodmanAsTheManifestsRunThem(t *testing.T) {
	lookPath(t, "podman", "runc")
	id := fmt.Sprintf("%06x", rand.IntN(1<<24))
	p := &podman{t: t, net: "catga-it-" + id, tag: "it-" + id}
	images := t.TempDir()
	infra := []string{"nats", "redis"}
	buildImages(t, images, "../examples/order-service", p.tag, append(append([]string{}, services...), infra...)...)
	for _, s := range append(append([]string{}, services...), infra...) {
		p.run("load", "-q", "-i", filepath.Join(images, s+".docker-archive.tar"))
		ref := "catga/" + s + ":" + p.tag
		t.Cleanup(func() { _, _ = p.try("rmi", "-f", ref) })
	}
	p.run("network", "create", p.net)
	t.Cleanup(func() { _, _ = p.try("network", "rm", "-f", p.net) })

	o := build(t, "k8s/overlays/dev")
	nats := o.statefulSets["nats"]
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "nats.conf"), []byte(o.configMaps[natsConfigMap(t, o)].Data["nats.conf"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := nats.Spec.Template.Spec
	natsPod := p.start("nats-0", "nats", "catga/nats:"+p.tag, ns.Containers[0], ns.SecurityContext, grace(ns),
		conf+":/etc/nats:ro", hostDir(t, *ns.SecurityContext.RunAsUser)+":/data")
	rs := o.statefulSets["redis"].Spec.Template.Spec
	redisPod := p.start("redis-0", "redis", "catga/redis:"+p.tag, rs.Containers[0], rs.SecurityContext, grace(rs),
		hostDir(t, *rs.SecurityContext.RunAsUser)+":/data")
	p.waitReady(natsPod, 30*time.Second)
	p.waitReady(redisPod, 30*time.Second)

	pods := map[string]*pod{}
	for _, s := range services {
		d := o.deployments[s]
		spec := d.Spec.Template.Spec
		c := spec.Containers[0]
		if repo := strings.Split(c.Image, ":")[0]; repo != "catga/"+s {
			t.Fatalf("%s runs image %s, want catga/%s", s, c.Image, s)
		}
		pods[s] = p.start(s+"-0", s, "catga/"+s+":"+p.tag, c, spec.SecurityContext, grace(spec))
	}
	for _, s := range services {
		// What the runtime made of the manifests' security context.
		got := p.run("inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} caps=[{{range .EffectiveCaps}}{{.}} {{end}}] {{.HostConfig.SecurityOpt}}", pods[s].name)
		if want := "65532:65532 true caps=[] [no-new-privileges]"; got != want {
			t.Errorf("%s runs as %q, want %q (non-root, read-only root, no capabilities, no privilege escalation)", s, got, want)
		}
		p.waitReady(pods[s], 60*time.Second)
		health := "http://" + pods[s].port(t, "http") + pods[s].spec.LivenessProbe.HTTPGet.Path
		if code := status(t, health); code != http.StatusOK {
			t.Errorf("%s %s: %d, want 200", s, health, code)
		}
	}

	// Orders end to end, through the four containers and the brokers.
	api := "http://" + pods["order-service"].port(t, "http")
	var ids []string
	for i := range 20 {
		body := fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"SKU-%d","qty":1,"price_cents":500}]}`, i, i%3)
		resp, err := http.Post(api+"/orders", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var created struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || created.ID == "" {
			t.Fatalf("POST /orders: %d %+v", resp.StatusCode, created)
		}
		ids = append(ids, created.ID)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			var o struct{ Status string }
			getJSON(t, api+"/orders/"+id, &o)
			if o.Status == "shipped" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s is %q after a minute, want shipped", id, o.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("%d orders shipped through the containers", len(ids))

	// A new service (catga new, NATS) through the same, against the same brokers.
	name := "shop-" + id
	dir := filepath.Join(t.TempDir(), name)
	root, _ := filepath.Abs("..")
	if _, err := scaffold.Generate(scaffold.Options{Name: name, Transport: "nats", Dir: dir, CatgaPath: root}); err != nil {
		t.Fatal(err)
	}
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy in the new service: %v\n%s", err, out)
	}
	bin := filepath.Join(t.TempDir(), name)
	gobuild := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/"+name)
	gobuild.Dir, gobuild.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build of the new service: %v\n%s", err, out)
	}
	img, err := image.Build(image.Spec{Service: name, Binary: bin, Version: scaffold.Version})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(images, name+".docker-archive.tar")
	ref := "catga/" + name + ":" + p.tag
	if err := image.WriteDockerArchive(archive, ref, img); err != nil {
		t.Fatal(err)
	}
	p.run("load", "-q", "-i", archive)
	t.Cleanup(func() { _, _ = p.try("rmi", "-f", ref) })
	so := build(t, filepath.Join(dir, "deploy", "k8s"))
	sd := so.deployments[name].Spec.Template.Spec
	shop := p.start(name+"-0", name, ref, sd.Containers[0], sd.SecurityContext, grace(sd))
	p.waitReady(shop, 60*time.Second)
	if code := status(t, "http://"+shop.port(t, "http")+sd.Containers[0].LivenessProbe.HTTPGet.Path); code != http.StatusOK {
		t.Errorf("%s /health: %d, want 200", name, code)
	}

	// SIGTERM: each ends within its grace period, exit 0; the services
	// first, as a rollout would, then the brokers.
	for _, s := range services {
		t.Logf("%s stopped in %v", s, p.stop(pods[s]).Round(time.Millisecond))
	}
	t.Logf("%s stopped in %v", name, p.stop(shop).Round(time.Millisecond))
	t.Logf("redis stopped in %v", p.stop(redisPod).Round(time.Millisecond))
	t.Logf("nats stopped in %v", p.stop(natsPod).Round(time.Millisecond))
}

func grace(s corev1.PodSpec) int64 {
	if s.TerminationGracePeriodSeconds != nil {
		return *s.TerminationGracePeriodSeconds
	}
	return 30 // Kubernetes's default
}

// natsConfigMap is the name kustomize gave the nats-config ConfigMap (with
// its hash suffix).
func natsConfigMap(t *testing.T, o objects) string {
	t.Helper()
	for n := range o.configMaps {
		if strings.HasPrefix(n, "nats-config") {
			return n
		}
	}
	t.Fatal("no nats-config ConfigMap")
	return ""
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := getJSONWith(http.DefaultClient, url, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
