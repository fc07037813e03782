package deploy_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// natsConf returns the nats.conf that the StatefulSet nats mounts.
func natsConf(t *testing.T, o objects) string {
	t.Helper()
	sts := o.statefulSets["nats"]
	if sts == nil {
		t.Fatal("no StatefulSet nats")
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			if cm := o.configMaps[v.ConfigMap.Name]; cm != nil && cm.Data["nats.conf"] != "" {
				return cm.Data["nats.conf"]
			}
			t.Fatalf("nats mounts ConfigMap %s, which the build lacks or which has no nats.conf", v.ConfigMap.Name)
		}
	}
	t.Fatal("nats mounts no ConfigMap")
	return ""
}

func containerPort(c corev1.Container, name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// natsOptions parses conf as nats-server -c does, for the pod podName
// ($POD_NAME), and checks its ports are the container's. It then moves
// what a test on this machine must: the client and monitor ports to free
// ones on 127.0.0.1, the store to a temporary directory.
func natsOptions(t *testing.T, sts *appsv1.StatefulSet, conf, podName string) *server.Options {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", podName)
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server cannot read nats.conf: %v\n%s", err, conf)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if opts.Port != containerPort(c, "client") || opts.HTTPPort != containerPort(c, "monitor") {
		t.Errorf("nats.conf port %d, http_port %d; the container's client %d, monitor %d",
			opts.Port, opts.HTTPPort, containerPort(c, "client"), containerPort(c, "monitor"))
	}
	if opts.ServerName != podName || !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("nats.conf: server_name %q, jetstream %v, store_dir %q; want %s, on, /data (the volume)", opts.ServerName, opts.JetStream, opts.StoreDir, podName)
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	return opts
}

// startNATS starts a server with opts in process, stopped at cleanup, and
// waits for its client port (not for JetStream: a clustered node waits
// for its routes).
func startNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server not ready for connections in 20s")
	}
	return s
}

// probe GETs a probe's path on the server's monitor port.
func probe(t *testing.T, s *server.Server, p *corev1.Probe) int {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "monitor" {
		t.Fatalf("probe %+v, want an HTTP GET on the monitor port", p)
	}
	resp, err := http.Get("http://" + s.MonitorAddr().String() + p.HTTPGet.Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually waits up to d for the readiness probe's status to be want.
func eventually(t *testing.T, s *server.Server, p *corev1.Probe, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := probe(t, s, p)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s on %s = %d after %v, want %d", p.HTTPGet.Path, s.Name(), got, d, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createStream makes a stream of replicas on the server at url, and
// publishes to it: JetStream serves.
func createStream(t *testing.T, url string, replicas int) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DEPLOYTEST", Subjects: []string{"deploytest.>"}, Replicas: replicas}); err != nil {
		t.Fatalf("create a stream of %d replicas: %v", replicas, err)
	}
	if _, err := js.Publish(ctx, "deploytest.x", []byte("x")); err != nil {
		t.Fatalf("publish to the stream: %v", err)
	}
}

// runSingleNode runs the StatefulSet's one node with conf, waits for its
// readiness probe, and creates a stream.
func runSingleNode(t *testing.T, what string, sts *appsv1.StatefulSet, conf string) {
	t.Helper()
	if *sts.Spec.Replicas != 1 {
		t.Fatalf("%s: nats runs %d replicas, want 1", what, *sts.Spec.Replicas)
	}
	opts := natsOptions(t, sts, conf, sts.Name+"-0")
	if opts.Cluster.Port != 0 || len(opts.Routes) != 0 {
		t.Errorf("%s: one node with a cluster block (port %d, %d routes): it waits for a meta leader that never comes", what, opts.Cluster.Port, len(opts.Routes))
	}
	s := startNATS(t, opts)
	c := sts.Spec.Template.Spec.Containers[0]
	eventually(t, s, c.ReadinessProbe, http.StatusOK, 20*time.Second)
	createStream(t, s.ClientURL(), 1)
	if got := probe(t, s, c.LivenessProbe); got != http.StatusOK {
		t.Errorf("%s: liveness %s = %d, want 200", what, c.LivenessProbe.HTTPGet.Path, got)
	}
}

// The dev overlay runs one NATS node, which JetStream serves.
func TestNATS_DevOverlayIsOneNodeThatServesJetStream(t *testing.T) {
	o := build(t, "k8s/overlays/dev")
	runSingleNode(t, "dev", o.statefulSets["nats"], natsConf(t, o))
}

// The prod overlay (the base's config) clusters three nodes through the
// headless Service; run here with the routes moved to local ports, they
// elect a meta leader, each is ready, and a stream of three replicas works.
func TestNATS_ProdIsAClusterOfThreeThatServesJetStream(t *testing.T) {
	o := build(t, "k8s/overlays/prod")
	sts := o.statefulSets["nats"]
	n := int(*sts.Spec.Replicas)
	conf := natsConf(t, o)
	c := sts.Spec.Template.Spec.Containers[0]
	if h := o.services[sts.Spec.ServiceName]; h == nil || h.Spec.ClusterIP != "None" || !h.Spec.PublishNotReadyAddresses {
		t.Fatalf("the StatefulSet's Service %s is not headless with not-ready addresses: routes could not form before readiness", sts.Spec.ServiceName)
	}
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var local []*url.URL
	for _, p := range ports {
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", p))
		local = append(local, u)
	}
	var nodes []*server.Server
	for i := range n {
		opts := natsOptions(t, sts, conf, fmt.Sprintf("%s-%d", sts.Name, i))
		if opts.Cluster.Port != containerPort(c, "cluster") || len(opts.Routes) != n {
			t.Fatalf("cluster port %d, %d routes; want the container's %d, and %d routes", opts.Cluster.Port, len(opts.Routes), containerPort(c, "cluster"), n)
		}
		for j, r := range opts.Routes {
			if want := fmt.Sprintf("%s-%d.%s:%d", sts.Name, j, sts.Spec.ServiceName, containerPort(c, "cluster")); r.Host != want {
				t.Errorf("route %d is %s, want %s (pod %d of the StatefulSet)", j, r.Host, want, j)
			}
		}
		opts.Cluster.Host, opts.Cluster.Port, opts.Routes = "127.0.0.1", ports[i], local
		nodes = append(nodes, startNATS(t, opts))
	}
	for _, s := range nodes {
		eventually(t, s, c.ReadinessProbe, http.StatusOK, 30*time.Second)
	}
	createStream(t, nodes[0].ClientURL(), n)
}

// Alone, a node of the cluster has no meta leader: JetStream cannot serve,
// and its readiness probe must say so, while it is alive.
func TestNATS_ReadinessFailsWithoutAMetaLeader(t *testing.T) {
	o := build(t, "k8s/base")
	sts := o.statefulSets["nats"]
	c := sts.Spec.Template.Spec.Containers[0]
	opts := natsOptions(t, sts, natsConf(t, o), sts.Name+"-0")
	u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))) // nobody there
	opts.Cluster.Host, opts.Cluster.Port, opts.Routes = "127.0.0.1", freePort(t), []*url.URL{u}
	s := startNATS(t, opts)
	eventually(t, s, c.LivenessProbe, http.StatusOK, 20*time.Second)
	for range 10 {
		if got := probe(t, s, c.ReadinessProbe); got == http.StatusOK {
			t.Fatalf("readiness %s = 200 with no meta leader; want it to fail while JetStream cannot serve", c.ReadinessProbe.HTTPGet.Path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
