//go:build k8se2e

// make k8s-e2e: a real single-node Kubernetes on this machine
// (scripts/k8s-build, scripts/k8s-node), the example system on it, and
// what a rollout and a lost pod do to orders. Not part of make test: a
// cold build of Kubernetes takes about 15 minutes, a run a few.

package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/catga-go/catga/scaffold"
)

// cluster is the node scripts/k8s-node runs, in its own network namespace.
type cluster struct {
	t    *testing.T
	root string
	env  []string
	run  string
	ns   string
}

func (c *cluster) node(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.root, "scripts", "k8s-node"), args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, err := c.node(args...)
	if err != nil {
		c.t.Fatalf("k8s-node %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// replaced waits until the pods of selector are one Ready pod other than
// old, and returns its name.
func (c *cluster) replaced(t *testing.T, selector, old string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var out string
	for time.Now().Before(deadline) {
		out, _ = c.node("kubectl", "get", "pod", "-n", "catga", "-l", selector, "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		if f := strings.Fields(out); len(f) == 1 && strings.HasSuffix(f[0], "=True") && !strings.HasPrefix(f[0], old+"=") {
			return strings.TrimSuffix(f[0], "=True")
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("pods of %s after %v: %s; want one Ready pod in place of %s", selector, within, out, old)
	return ""
}

func (c *cluster) kubectl(args ...string) string {
	c.t.Helper()
	return c.must(append([]string{"kubectl"}, args...)...)
}

// nsDialer dials from inside the node's network namespace: a goroutine
// locked to a thread that joined it makes every socket, so the test's
// HTTP client reaches Service IPs through kube-proxy as a pod on the node
// would, and nothing it sends leaves the namespace.
type nsDialer struct {
	reqs chan dialReq
	done chan struct{}
	wg   sync.WaitGroup
}

type dialReq struct {
	addr string
	out  chan dialRes
}

type dialRes struct {
	c   net.Conn
	err error
}

func newNSDialer(t *testing.T, ns string) *nsDialer {
	t.Helper()
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	d := &nsDialer{reqs: make(chan dialReq), done: make(chan struct{})}
	joined := make(chan error, 1)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer f.Close()
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			joined <- err
			return
		}
		joined <- nil
		for {
			select {
			case r := <-d.reqs:
				c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
				r.out <- dialRes{c, err}
			case <-d.done:
				return
			}
		}
	}()
	if err := <-joined; err != nil {
		t.Fatalf("setns %s: %v", ns, err)
	}
	t.Cleanup(func() { close(d.done); d.wg.Wait() })
	return d
}

var errDialerClosed = errors.New("the node's dialer is closed")

func (d *nsDialer) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	out := make(chan dialRes, 1)
	select {
	case d.reqs <- dialReq{addr, out}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		return nil, errDialerClosed
	}
	r := <-out
	return r.c, r.err
}

// traffic posts orders from its goroutines until stopped; a test that
// fails meanwhile stops it at cleanup, before the dialer closes.
type traffic struct {
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	failed atomic.Int64
}

func newTraffic(t *testing.T, post func(int) error, from ...int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	t.Cleanup(tr.Stop)
	for _, f := range from {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := f; ; i++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				if err := post(i); err != nil {
					tr.failed.Add(1)
					t.Logf("request %d: %v", i, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return tr
}

// Stop stops the traffic and waits for its requests in flight.
func (tr *traffic) Stop() {
	tr.once.Do(func() { close(tr.stop) })
	tr.wg.Wait()
}

// TestKubernetes: the API server validates both overlays and a new
// service's manifests; the dev overlay runs with every pod Ready through
// its probe; orders posted through the order-service Service ship; a
// payment pod deleted mid-traffic is replaced with no order lost and no
// order charged twice; order-service rolls to a new image tag with no
// failed request; the HPAs and PDBs are accepted; the prod overlay passes
// a server-side dry run; and the node comes down leaving nothing behind.
func TestKubernetes(t *testing.T) {
	root, _ := filepath.Abs("..")
	id := fmt.Sprintf("%06x", rand.IntN(1<<24))
	c := &cluster{t: t, root: root, run: filepath.Join(os.TempDir(), "catga-k8s-"+id), ns: "catga-k8s-" + id}
	images := t.TempDir()
	c.env = append(os.Environ(), "K8S_RUN="+c.run, "K8S_NETNS="+c.ns, "K8S_IMAGES="+images)

	start := time.Now()
	build := exec.Command(filepath.Join(root, "scripts", "k8s-build"))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("scripts/k8s-build: %v", err)
	}
	buildImages(t, images, "../examples/order-service", "e2e", append(append([]string{}, services...), "nats", "redis", "pause", "coredns")...)
	t.Logf("built (cached where it could be) in %v", time.Since(start).Round(time.Second))

	sysctls := readSysctls(t)
	t.Cleanup(func() {
		if out, err := c.node("down"); err != nil {
			t.Errorf("k8s-node down: %v\n%s", err, out)
		}
		leftovers(t, c)
		if after := readSysctls(t); after != sysctls {
			t.Errorf("sysctls after down: %s; before up: %s", after, sysctls)
		}
	})
	start = time.Now()
	c.must("up")
	t.Logf("node up in %v", time.Since(start).Round(time.Second))

	// Rung (b): the real API server validates and defaults every object.
	c.kubectl("create", "namespace", "catga")
	for _, dir := range []string{"k8s/overlays/dev", "k8s/overlays/prod"} {
		out := c.kubectl("apply", "--server-side", "--dry-run=server", "-k", filepath.Join(root, "deploy", dir))
		t.Logf("server-side dry run of %s: %d objects", dir, strings.Count(out, "\n")+1)
	}
	shop := filepath.Join(t.TempDir(), "shop")
	if _, err := scaffold.Generate(scaffold.Options{Name: "shop", Transport: "nats", Dir: shop}); err != nil {
		t.Fatal(err)
	}
	c.kubectl("apply", "--server-side", "--dry-run=server", "-n", "default", "-k", filepath.Join(shop, "deploy", "k8s"))

	// The system, on volumes the test makes, with every image side-loaded.
	for _, s := range append(append([]string{}, services...), "nats", "redis", "coredns") {
		c.must("import", filepath.Join(images, s+".docker-archive.tar"))
	}
	c.kubectl("apply", "-f", volumes(t, c.run))
	c.kubectl("apply", "--server-side", "-k", filepath.Join(root, "deploy", "k8s", "e2e"))
	start = time.Now()
	// Each workload rolled out: its pods made and Ready through their probes.
	c.kubectl("rollout", "status", "-n", "kube-system", "deployment/coredns", "--timeout=240s")
	for _, w := range []string{"statefulset/nats", "statefulset/redis", "deployment/order-service", "deployment/inventory-service", "deployment/payment-service", "deployment/shipping-service"} {
		c.kubectl("rollout", "status", "-n", "catga", w, "--timeout=240s")
	}
	if out := c.kubectl("get", "pod", "-n", "catga", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`); strings.Count(out, "=True") != 6 || strings.Contains(out, "=False") {
		t.Fatalf("pods: %s; want six, each Ready", out)
	}
	t.Logf("every pod Ready in %v", time.Since(start).Round(time.Second))

	dial := newNSDialer(t, c.ns)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial.DialContext}}
	orders := "http://" + c.kubectl("get", "svc", "-n", "catga", "order-service", "-o", "jsonpath={.spec.clusterIP}") + ":80"
	payments := "http://" + c.kubectl("get", "svc", "-n", "catga", "payment-service", "-o", "jsonpath={.spec.clusterIP}") + ":80"

	// Ready pods are not yet a Service that answers: the endpoints reach
	// kube-proxy's rules a moment later (until then a connection is refused).
	for _, svc := range []string{orders, payments} {
		deadline := time.Now().Add(time.Minute)
		for {
			resp, err := client.Get(svc + "/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/health through the Service: %v after a minute", svc, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	var posted []string
	var mu sync.Mutex
	post := func(i int) error {
		body := fmt.Sprintf(`{"customer_id":"k%d","items":[{"sku":"SKU-%d","qty":1,"price_cents":700}]}`, i, i%5)
		resp, err := client.Post(orders+"/orders", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var created struct{ ID string }
		if err := json.Unmarshal(b, &created); err != nil || resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST /orders: %d %s", resp.StatusCode, b)
		}
		mu.Lock()
		posted = append(posted, created.ID)
		mu.Unlock()
		return nil
	}
	for i := range 20 {
		if err := post(i); err != nil {
			t.Fatal(err)
		}
	}

	// A payment pod deleted mid-traffic.
	tr := newTraffic(t, post, 1000)
	time.Sleep(time.Second)
	old := c.kubectl("get", "pod", "-n", "catga", "-l", "app=payment-service", "-o", "jsonpath={.items[0].metadata.name}")
	c.kubectl("delete", "pod", "-n", "catga", old, "--wait=false")
	start = time.Now()
	replacement := c.replaced(t, "app=payment-service", old, 2*time.Minute)
	t.Logf("payment pod %s deleted, %s Ready in its place after %v", old, replacement, time.Since(start).Round(time.Second))
	time.Sleep(time.Second)
	tr.Stop()
	mu.Lock()
	ordersSoFar := len(posted)
	mu.Unlock()
	waitShipped(t, client, orders, posted)
	charged := charges(t, client, payments, posted)
	t.Logf("payment pod deleted mid-traffic: %d orders, all shipped, %d charges (one each), %d failed requests", ordersSoFar, charged, tr.failed.Load())
	if tr.failed.Load() != 0 {
		t.Errorf("%d requests to order-service failed while a payment pod was replaced", tr.failed.Load())
	}

	// order-service rolled to a new image tag under traffic.
	c.must("exec", "ctr", "--address", filepath.Join(c.run, "containerd", "containerd.sock"), "-n", "k8s.io",
		"images", "tag", "docker.io/catga/order-service:e2e", "docker.io/catga/order-service:e2e-2")
	before := len(posted)
	tr = newTraffic(t, post, 5000, 7000)
	time.Sleep(time.Second)
	start = time.Now()
	c.kubectl("set", "image", "-n", "catga", "deployment/order-service", "order-service=catga/order-service:e2e-2")
	c.kubectl("rollout", "status", "-n", "catga", "deployment/order-service", "--timeout=180s")
	rolled := time.Since(start)
	// The traffic goes on until the old pod is gone: through its preStop
	// pause, its /ready turning 503 and its drain.
	deadline := time.Now().Add(2 * time.Minute)
	var pods string
	for pods != "catga/order-service:e2e-2" && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		pods, _ = c.node("kubectl", "get", "pod", "-n", "catga", "-l", "app=order-service", "-o", "jsonpath={.items[*].spec.containers[0].image}")
	}
	gone := time.Since(start)
	time.Sleep(time.Second)
	tr.Stop()
	if pods != "catga/order-service:e2e-2" {
		t.Errorf("order-service pods run %q two minutes after the rollout, want one of catga/order-service:e2e-2", pods)
	}
	mu.Lock()
	during := len(posted) - before
	mu.Unlock()
	t.Logf("rolling update: new pod Ready in %v, the old one gone after %v; %d requests during it, %d failed", rolled.Round(time.Second), gone.Round(time.Second), during, tr.failed.Load())
	if tr.failed.Load() != 0 {
		t.Errorf("%d requests failed during the rolling update, want 0", tr.failed.Load())
	}
	waitShipped(t, client, orders, posted)
	charges(t, client, payments, posted)

	// The HPAs and PDBs are objects the API server took.
	for _, kind := range []string{"hpa", "pdb"} {
		got := c.kubectl("get", kind, "-n", "catga", "-o", "jsonpath={.items[*].metadata.name}")
		for _, s := range services {
			if !strings.Contains(" "+got+" ", " "+s+" ") {
				t.Errorf("%s %s missing (have %q)", kind, s, got)
			}
		}
	}
	t.Logf("%d orders in all, each shipped and charged once", len(posted))
}

// volumes writes hostPath PVs in the node's run directory for the claims
// of the dev overlay's StatefulSets (NATS and Redis, one replica each),
// writable by their users.
func volumes(t *testing.T, run string) string {
	t.Helper()
	var b strings.Builder
	for _, v := range []struct{ claim, size string }{{"data-nats-0", "10Gi"}, {"data-redis-0", "5Gi"}} {
		dir := filepath.Join(run, "pv", v.claim)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, `apiVersion: v1
kind: PersistentVolume
metadata:
  name: %s
spec:
  capacity: {storage: %s}
  accessModes: [ReadWriteOnce]
  storageClassName: local
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: catga, name: %s}
  hostPath: {path: %s, type: Directory}
---
`, v.claim, v.size, v.claim, dir)
	}
	path := filepath.Join(t.TempDir(), "pv.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitShipped waits until every order is shipped.
func waitShipped(t *testing.T, client *http.Client, orders string, ids []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, id := range ids {
		for {
			var o struct{ Status string }
			if err := getJSONWith(client, orders+"/orders/"+id, &o); err == nil && o.Status == "shipped" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("order %s: %q (%v) after two minutes, want shipped", id, o.Status, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// charges checks that each order was charged exactly once and returns how
// many charges there are.
func charges(t *testing.T, client *http.Client, payments string, ids []string) int {
	t.Helper()
	n := 0
	for _, id := range ids {
		var list struct {
			Charges []struct {
				OrderID string `json:"order_id"`
			} `json:"charges"`
		}
		if err := getJSONWith(client, payments+"/payments?order_id="+id, &list); err != nil {
			t.Fatalf("GET /payments?order_id=%s: %v", id, err)
		}
		if len(list.Charges) != 1 {
			t.Errorf("order %s charged %d times, want once", id, len(list.Charges))
		}
		n += len(list.Charges)
	}
	return n
}

// readSysctls reads the global sysctls the kubelet sets.
func readSysctls(t *testing.T) string {
	t.Helper()
	var out []string
	for _, k := range []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"} {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k+"="+strings.TrimSpace(string(b)))
	}
	return strings.Join(out, " ")
}

// leftovers fails on anything of the node that outlived its down: a
// process of the run directory, a mount under it, the namespace, the run
// directory, a kubepods cgroup.
func leftovers(t *testing.T, c *cluster) {
	t.Helper()
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), c.ns) {
		t.Errorf("network namespace %s left after down", c.ns)
	}
	if _, err := os.Stat(c.run); err == nil {
		t.Errorf("%s left after down", c.run)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), c.run) {
		t.Errorf("a mount under %s left after down", c.run)
	}
	if out, _ := exec.Command("pgrep", "-f", c.run).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("processes of %s left after down: %s", c.run, out)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "cni-") {
		t.Errorf("a pod's network namespace left after down: %s", out)
	}
	for _, p := range []string{"/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/cpu/kubepods", "/sys/fs/cgroup/pids/kubepods"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup %s left after down", p)
		}
	}
	if out, _ := exec.Command("ip", "link", "show", "cni0").CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("a cni0 interface on the host: %s", out)
	}
}
