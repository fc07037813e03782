// Package system runs the example's services as separate processes, the way
// they are deployed, and drives them over HTTP.
package system

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/modules/natsmod/natstest"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

var services = []string{"order-service", "inventory-service", "payment-service", "shipping-service"}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the four service binaries once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "catga-system-bin")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + string(os.PathSeparator)}
		for _, s := range services {
			args = append(args, "../cmd/"+s)
		}
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m).Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one running service process.
type proc struct {
	name, addr string
	stdoutFile string // where stdout goes (the console exporter's spans), if set
	cmd        *exec.Cmd
	logs       *bytes.Buffer
	mu         *sync.Mutex
	exited     chan error
}

// startService starts one replica of service with env and waits for /ready.
func startService(t *testing.T, service, replica string, env ...string) *proc {
	t.Helper()
	return startServiceTo(t, service, replica, "", env...)
}

// startServiceTo is startService with stdout written to stdoutFile.
func startServiceTo(t *testing.T, service, replica, stdoutFile string, env ...string) *proc {
	t.Helper()
	p := &proc{name: service + "/" + replica, addr: freeAddr(t), logs: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan error, 1), stdoutFile: stdoutFile}
	p.cmd = exec.Command(filepath.Join(binaries(t), service))
	p.cmd.Env = append(os.Environ(), append([]string{
		"HTTP_ADDR=" + p.addr, "HOSTNAME=" + service + "-" + replica, "CATGA_SERVICE=" + service, "LOG_LEVEL=warn",
	}, env...)...)
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = io.Discard
	if p.stdoutFile != "" {
		f, err := os.Create(p.stdoutFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		p.cmd.Stdout = f
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			if p.logs.Len() < 1<<20 {
				p.logs.WriteString(s.Text() + "\n")
			}
			p.mu.Unlock()
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(t) })
	if !catgatest.Poll(30*time.Second, func() bool {
		resp, err := http.Get("http://" + p.addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("%s exited (%v) before it was ready:\n%s", p.name, err, p.output())
		default:
		}
		return false
	}) {
		t.Fatalf("%s not ready within 30s:\n%s", p.name, p.output())
	}
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Errorf("%s exited with %v:\n%s", p.name, err, p.output())
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
	}
}

// kill ends the process with SIGKILL, as a crash.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.exited <- nil
}

var client = &http.Client{Timeout: 10 * time.Second}

func postOrder(t *testing.T, base string, body string) string {
	t.Helper()
	resp, err := client.Post(base+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders = %d %s", resp.StatusCode, b)
	}
	var r struct{ ID string }
	_ = json.Unmarshal(b, &r)
	return r.ID
}

type order struct {
	ID      string
	Status  string
	History []struct{ Event string }
}

func getOrder(t *testing.T, base, id string) (order, int) {
	t.Helper()
	resp, err := client.Get(base + "/orders/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o order
	_ = json.NewDecoder(resp.Body).Decode(&o)
	return o, resp.StatusCode
}

func charges(t *testing.T, base, id string) int {
	t.Helper()
	resp, err := client.Get(base + "/payments?order_id=" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Charges []json.RawMessage }
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return len(r.Charges)
}

// orderCase is one order and the terminal state it must reach.
type orderCase struct {
	body, want string
}

func orderCases(n int) []orderCase {
	out := make([]orderCase, n)
	for i := range out {
		switch i % 10 {
		case 3:
			out[i] = orderCase{fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"OUT-OF-STOCK","qty":1,"price_cents":100}]}`, i), "rejected"}
		case 7:
			out[i] = orderCase{fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"TV","qty":3,"price_cents":400000}]}`, i), "payment_failed"}
		default:
			out[i] = orderCase{fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"A","qty":2,"price_cents":%d}]}`, i, 100+i), "shipped"}
		}
	}
	return out
}

// runOrders posts the cases round-robin to orderBases and waits until each
// order reaches its state; it returns the ids of the paid orders.
func runOrders(t *testing.T, orderBases []string, cases []orderCase) []string {
	t.Helper()
	return waitOrders(t, orderBases, cases, postOrders(t, orderBases, cases, nil))
}

// postOrders posts the cases round-robin, calling halfway (if not nil)
// when half are posted.
func postOrders(t *testing.T, orderBases []string, cases []orderCase, halfway func()) []string {
	t.Helper()
	ids := make([]string, len(cases))
	for i, c := range cases {
		if i == len(cases)/2 && halfway != nil {
			halfway()
		}
		ids[i] = postOrder(t, orderBases[i%len(orderBases)], c.body)
	}
	return ids
}

// waitOrders waits until each order reaches its case's state, reading from
// another replica than the one it was posted to.
func waitOrders(t *testing.T, orderBases []string, cases []orderCase, ids []string) []string {
	t.Helper()
	var paid []string
	deadline := time.Now().Add(90 * time.Second)
	for i, id := range ids {
		var o order
		var code int
		if !catgatest.Poll(time.Until(deadline), func() bool {
			o, code = getOrder(t, orderBases[(i+1)%len(orderBases)], id)
			return code == http.StatusOK && o.Status == cases[i].want
		}) {
			t.Fatalf("order %d (%s): status %q (%d), want %q", i, id, o.Status, code, cases[i].want)
		}
		if cases[i].want == "shipped" {
			paid = append(paid, id)
		}
	}
	return paid
}

// The example's four services as four processes on one embedded NATS
// server: 100 orders over HTTP reach their terminal states.
func TestServices_OverNATS_OrdersReachTerminalStates(t *testing.T) {
	srv := natstest.Start(t)
	env := []string{"NATS_URL=" + srv.URL(), "CATGA_TRANSPORT=nats"}
	procs := map[string]*proc{}
	for _, s := range services {
		procs[s] = startService(t, s, "1", env...)
	}
	base := func(s string) string { return "http://" + procs[s].addr }
	paid := runOrders(t, []string{base("order-service")}, orderCases(100))
	for _, id := range paid {
		if n := charges(t, base("payment-service"), id); n != 1 {
			t.Fatalf("order %s charged %d times, want 1", id, n)
		}
	}
	t.Logf("100 orders over 4 processes on NATS: %d shipped, each charged once", len(paid))
}
