package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/freeport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// The system the issue measured: 10 services of 2 instances each, every
// instance subscribed to 200 event types.
const (
	services  = 10
	instances = 2
	types     = 200
)

// idleWindow is how long the system is watched idle: CATGA_SCALE_IDLE
// (a Go duration), 60 s by default.
func idleWindow(b *testing.B) time.Duration {
	if v := os.Getenv("CATGA_SCALE_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("CATGA_SCALE_IDLE=%q: want a positive duration such as 60s", v)
		}
		return d
	}
	return time.Minute
}

// TestMain runs the embedded nats-server as a child process of this test
// binary when asked (serverEnv), so its CPU and memory are its own.
func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) != "" {
		os.Exit(runNATSServer())
	}
	os.Exit(m.Run())
}

const serverEnv = "CATGA_SCALE_NATS_SERVER" // "port,monitor port,store dir"

func runNATSServer() int {
	parts := strings.Split(os.Getenv(serverEnv), ",")
	port, _ := strconv.Atoi(parts[0])
	mon, _ := strconv.Atoi(parts[1])
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, HTTPHost: "127.0.0.1", HTTPPort: mon,
		JetStream: true, StoreDir: parts[2], NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats-server not ready")
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}

// natsChild starts the newest nats-server (this module's) in a child
// process; it returns its URL, monitoring URL and pid.
func natsChild(b *testing.B) (url, monitor string, pid int) {
	port, mon := freeport.Get(b, "scale"), freeport.Get(b, "scale")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%s", serverEnv, port, mon, b.TempDir()))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	url = fmt.Sprintf("nats://127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if nc, err := nats.Connect(url); err == nil {
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the nats-server child did not start")
		}
	}
	return url, fmt.Sprintf("http://127.0.0.1:%d", mon), cmd.Process.Pid
}

// topics returns n event topics whose handler acks.
func topics(n int) []transport.TopicHandler {
	out := make([]transport.TopicHandler, n)
	for i := range out {
		out[i] = transport.TopicHandler{Topic: transport.Topic{Kind: transport.KindEvent, Name: fmt.Sprintf("Scale%03d", i)},
			Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) { _ = d.Ack(ctx) })}
	}
	return out
}

// instance is one started service instance: its transport and
// subscription, and how long Subscribe took.
type instance struct {
	tr    transport.Transport
	sub   transport.Closer
	start time.Duration
}

// figures is what the scale benchmark reports.
type figures struct {
	consumers         int
	startMedian       time.Duration
	startMax          time.Duration
	clientCPU, srvCPU float64 // % of one core over the idle window
	idleMsgs          float64 // messages into the server per second, idle
	goroutines        float64 // per instance
	heapMB            float64 // per instance
	srvRSSMB          float64
}

func (f figures) report(b *testing.B) {
	b.ReportMetric(float64(f.consumers), "consumers")
	b.ReportMetric(float64(f.startMedian.Milliseconds()), "start-median-ms")
	b.ReportMetric(float64(f.startMax.Milliseconds()), "start-max-ms")
	b.ReportMetric(f.clientCPU, "instances-cpu-%")
	b.ReportMetric(f.srvCPU, "server-cpu-%")
	b.ReportMetric(f.idleMsgs, "idle-msgs/s")
	b.ReportMetric(f.goroutines, "goroutines/instance")
	b.ReportMetric(f.heapMB, "heap-MB/instance")
	b.ReportMetric(f.srvRSSMB, "server-RSS-MB")
	b.Logf("%d services x %d instances x %d types: %d consumers; start median %v, max %v; idle CPU: instances %.2f%%, server %.2f%% of a core; idle %.1f msgs/s; %.0f goroutines and %.1f MB heap per instance; server RSS %.0f MB",
		services, instances, types, f.consumers, f.startMedian, f.startMax, f.clientCPU, f.srvCPU, f.idleMsgs, f.goroutines, f.heapMB, f.srvRSSMB)
}

// startAll starts services x instances instances at once, as a deploy
// does, each with mk, and subscribes each to the types.
func startAll(b *testing.B, mk func(name string) transport.Transport) []instance {
	out := make([]instance, services*instances)
	errs := make([]error, len(out))
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			group := fmt.Sprintf("svc%02d", i/instances)
			tr := mk(fmt.Sprintf("%s-%d", group, i%instances))
			began := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sub, err := tr.Subscribe(ctx, transport.Subscription{Group: group, Instance: fmt.Sprintf("i%d", i%instances), Topics: topics(types)})
			out[i], errs[i] = instance{tr: tr, sub: sub, start: time.Since(began)}, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("instance %d: %v", i, err)
		}
	}
	return out
}

func stopAll(ins []instance) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, in := range ins {
		if in.sub != nil {
			_ = in.sub.Close(ctx)
		}
		if c, ok := in.tr.(interface{ Close(context.Context) error }); ok {
			_ = c.Close(ctx)
		}
	}
}

// watch measures the idle window: the CPU of this process (the instances)
// and of the server, and the server's message counter.
func watch(b *testing.B, window time.Duration, srvPID int, srvMsgs func() int64, f *figures) {
	self0, srv0, msgs0 := selfCPU(), procCPU(b, srvPID), srvMsgs()
	time.Sleep(window)
	self1, srv1, msgs1 := selfCPU(), procCPU(b, srvPID), srvMsgs()
	f.clientCPU = 100 * (self1 - self0).Seconds() / window.Seconds()
	f.srvCPU = 100 * (srv1 - srv0).Seconds() / window.Seconds()
	f.idleMsgs = float64(msgs1-msgs0) / window.Seconds()
	f.srvRSSMB = procRSSMB(b, srvPID)
}

func startTimes(ins []instance, f *figures) {
	ds := make([]time.Duration, len(ins))
	for i, in := range ins {
		ds[i] = in.start
	}
	slices.Sort(ds)
	f.startMedian, f.startMax = ds[len(ds)/2], ds[len(ds)-1]
}

func perInstance(g0 int, h0 uint64, n int, f *figures) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f.goroutines = float64(runtime.NumGoroutine()-g0) / float64(n)
	f.heapMB = (float64(ms.HeapInuse) - float64(h0)) / float64(n) / (1 << 20)
}

func baseline() (int, uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

// BenchmarkScaleNATS starts 10 services x 2 instances x 200 event types on
// one nats-server (the newest, at its default settings) and measures the
// system idle. One op is the whole scenario; run it with -benchtime 1x
// (make bench-scale).
func BenchmarkScaleNATS(b *testing.B) {
	window := idleWindow(b)
	for b.Loop() {
		url, monitor, pid := natsChild(b)
		g0, h0 := baseline()
		prefix := fmt.Sprintf("s%d", time.Now().UnixNano()%1e6)
		ins := startAll(b, func(name string) transport.Transport {
			tr, err := natsmod.New(natsmod.Config{URL: url, Prefix: prefix, StreamPrefix: strings.ToUpper(prefix)}, name, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := tr.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			return tr
		})
		var f figures
		startTimes(ins, &f)
		f.consumers = natsConsumers(b, url)
		watch(b, window, pid, func() int64 { return varz(b, monitor) }, &f)
		perInstance(g0, h0, len(ins), &f)
		stopAll(ins)
		f.report(b)
	}
}

func natsConsumers(b *testing.B, url string) int {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	info, err := js.AccountInfo(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.Consumers
}

// varz is the server's count of messages in.
func varz(b *testing.B, monitor string) int64 {
	resp, err := http.Get(monitor + "/varz")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		InMsgs int64 `json:"in_msgs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		b.Fatal(err)
	}
	return v.InMsgs
}

// BenchmarkScaleRedis is BenchmarkScaleNATS on one redis-server; its
// "consumers" are the consumer groups created, and its idle messages the
// commands the server processed per second.
func BenchmarkScaleRedis(b *testing.B) {
	window := idleWindow(b)
	for b.Loop() {
		srv := redistest.Start(b)
		g0, h0 := baseline()
		prefix := fmt.Sprintf("s%d", time.Now().UnixNano()%1e6)
		ins := startAll(b, func(name string) transport.Transport {
			cfg := redismod.Config{URL: srv.URL(), Prefix: prefix, HashTags: true}.WithDefaults()
			tr, err := redismod.New(cfg, nil, name, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := tr.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			return tr
		})
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer rdb.Close()
		var f figures
		startTimes(ins, &f)
		f.consumers = redisGroups(b, rdb, prefix)
		watch(b, window, srv.PID(), func() int64 { return redisCommands(b, rdb) }, &f)
		perInstance(g0, h0, len(ins), &f)
		stopAll(ins)
		f.report(b)
	}
}

func redisGroups(b *testing.B, rdb *redis.Client, prefix string) int {
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if t, _ := rdb.Type(ctx, k).Result(); t != "stream" {
			continue
		}
		groups, err := rdb.XInfoGroups(ctx, k).Result()
		if err == nil {
			n += len(groups)
		}
	}
	return n
}

func redisCommands(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("INFO stats has no total_commands_processed")
	return 0
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is process pid's user and system CPU time, from /proc (Linux;
// clock ticks of 1/100 s).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command, which is in parentheses: utime and stime
	// are the 12th and 13th.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func procRSSMB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
