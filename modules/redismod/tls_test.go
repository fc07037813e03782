package redismod_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// Sealed is the event the security tests send through a bus.
type Sealed struct {
	N int `json:"n"`
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in a temporary directory.
type testPKI struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
	// KeyPEMs are the private keys' PEM blocks, secrets no log may show.
	KeyPEMs []string
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{}
	write := func(file, typ string, der []byte) string {
		t.Helper()
		path := filepath.Join(dir, file)
		block := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
		if err := os.WriteFile(path, block, 0o600); err != nil {
			t.Fatal(err)
		}
		if typ == "PRIVATE KEY" {
			p.KeyPEMs = append(p.KeyPEMs, string(block))
		}
		return path
	}
	serial := int64(1)
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{name}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := template(name + " CA")
	ca.IsCA, ca.BasicConstraintsValid = true, true
	ca.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatal(err)
	}
	p.CA = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(base string, tmpl *x509.Certificate) (certFile, keyFile string) {
		t.Helper()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(base+".pem", "CERTIFICATE", der), write(base+"-key.pem", "PRIVATE KEY", keyDER)
	}
	srv := template("127.0.0.1")
	srv.IPAddresses, srv.DNSNames = []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"}
	srv.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	p.ServerCert, p.ServerKey = leaf("server", srv)
	cl := template("catga-test-client")
	cl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.ClientCert, p.ClientKey = leaf("client", cl)
	return p
}

// tlsRedis is a redis-server that listens on TLS only (--port 0) and
// requires client certificates of its CA. redistest probes readiness with
// a plain PING on a plain port, which such a server does not have.
type tlsRedis struct {
	port int
	dir  string
	args []string
	pki  *testPKI
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout and stderr: config errors come before the log file
	done chan struct{}
}

// startTLSRedis starts a TLS-only redis-server with args added, stopped at
// cleanup. If this redis-server is built without TLS, it returns no server
// and what the server said, which names TLS; any other failure is fatal.
func startTLSRedis(t *testing.T, p *testPKI, args ...string) (srv *tlsRedis, noTLS string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("no free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &tlsRedis{port: port, dir: t.TempDir(), args: args, pki: p}
	if said, err := s.start(); err != nil {
		if said != "" && strings.Contains(strings.ToLower(said), "tls") {
			return nil, said
		}
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s, ""
}

// start runs the server and waits for a PONG over TLS. If the server exits
// at start, said is its output.
func (s *tlsRedis) start() (said string, err error) {
	bin, err := redistest.Binary()
	if err != nil {
		return "", err
	}
	args := append([]string{"--port", "0", "--tls-port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--tls-cert-file", s.pki.ServerCert, "--tls-key-file", s.pki.ServerKey, "--tls-ca-cert-file", s.pki.CA,
		"--tls-auth-clients", "yes", "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log")}, s.args...)
	s.out.Reset()
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := s.cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	cert, err := tls.LoadX509KeyPair(s.pki.ClientCert, s.pki.ClientKey)
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(s.pki.CA)
	pool.AppendCertsFromPEM(caPEM)
	probe := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if catgatest.Poll(10*time.Second, func() bool {
		d := &net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := tls.DialWithDialer(d, "tcp", s.addr(), probe); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
				return true
			}
		}
		select {
		case <-s.done:
			s.cmd = nil
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			said = s.out.String() + string(log)
			err = fmt.Errorf("TLS redis-server exited at start:\n%s", said)
			return true
		default:
			return false
		}
	}) {
		return said, err // err is nil, said empty, if it answered
	}
	s.stop()
	return "", fmt.Errorf("TLS redis-server on %s not ready within 10s", s.addr())
}

func (s *tlsRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// stop ends the server (SIGTERM, then SIGKILL); safe to call twice.
func (s *tlsRedis) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// restart stops the server and starts it again on the same port.
func (s *tlsRedis) restart(t *testing.T) {
	t.Helper()
	s.stop()
	if _, err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// sealedBus starts a bus on tr that handles Sealed events into the channel
// it returns; it stops at cleanup.
func sealedBus(t *testing.T, tr transport.Transport, service string) (*cqrs.Bus, <-chan int) {
	t.Helper()
	got := make(chan int, 64)
	bus, err := cqrs.New(cqrs.Options{Service: service, Instance: "i1", Transport: tr,
		Redelivery: cqrs.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Sealed](func(_ context.Context, e Sealed) error { got <- e.N; return nil })))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatalf("bus start: %v", err)
	}
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })
	return bus, got
}

// publishSealed publishes Sealed{n}, retrying while the server is away,
// and waits until the bus's handler has it. It returns the publish errors
// it saw on the way, for the caller to inspect.
func publishSealed(t *testing.T, bus *cqrs.Bus, got <-chan int, n int) (errs []error) {
	t.Helper()
	if !catgatest.Poll(15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := bus.Publish(ctx, Sealed{N: n})
		if err != nil {
			errs = append(errs, err)
		}
		return err == nil
	}) {
		t.Fatalf("publish %d: %v", n, errs[len(errs)-1])
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-got:
			if m == n {
				return errs
			}
		case <-timeout:
			t.Fatalf("event %d published, not handled within 15s", n)
		}
	}
}

// startRedisErr starts a transport on cfg, closes it, and returns the
// error of Start (or of New).
func startRedisErr(t *testing.T, cfg redismod.Config, log *zap.Logger) error {
	t.Helper()
	tr, err := redismod.New(cfg, nil, "tls", log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = tr.Start(ctx)
	if cerr := tr.Close(ctx); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// assertBuiltWithoutTLS is the other outcome of startTLSRedis: this
// redis-server has no TLS, and its own words say so.
func assertBuiltWithoutTLS(t *testing.T, said string) {
	t.Helper()
	if !strings.Contains(strings.ToLower(said), "tls") {
		t.Fatalf("redis-server refused the TLS options without naming TLS:\n%s", said)
	}
	t.Logf("this redis-server is built without TLS; it said:\n%s", said)
}

// Over a TLS-only server with client certificates, by rediss:// or by
// REDIS_TLS with a redis:// URL, a bus publishes and consumes.
func TestTLS_RoundTripThroughBus(t *testing.T) {
	p := newTestPKI(t, "catga")
	srv, noTLS := startTLSRedis(t, p)
	if noTLS != "" {
		assertBuiltWithoutTLS(t, noTLS)
		return
	}
	t.Logf("redis-server accepts TLS on %s", srv.addr())
	for name, url := range map[string]string{
		"rediss URL":                "rediss://" + srv.addr() + "/0",
		"REDIS_TLS and a redis URL": "redis://" + srv.addr() + "/0",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(url)
			cfg.TLS = strings.HasPrefix(url, "redis://")
			cfg.TLSCA, cfg.TLSCert, cfg.TLSKey = p.CA, p.ClientCert, p.ClientKey
			tr := connect(t, cfg, "tls")
			bus, got := sealedBus(t, tr, "tls")
			publishSealed(t, bus, got, 1)
			publishSealed(t, bus, got, 2)
			if !strings.Contains(cfg.String(), "TLS:true") {
				t.Fatalf("Config.String() = %s, want TLS:true", cfg)
			}
		})
	}
}

// A client that cannot verify the server, or that the server cannot
// verify, fails Start with an error that says TLS or certificate.
func TestTLS_StartFailsClearlyWithAnotherCAOrNoClientCert(t *testing.T) {
	p := newTestPKI(t, "catga")
	other := newTestPKI(t, "other")
	srv, noTLS := startTLSRedis(t, p)
	if noTLS != "" {
		assertBuiltWithoutTLS(t, noTLS)
		return
	}
	tests := []struct {
		name string
		set  func(*redismod.Config)
		want []string // one of these, lowercased, is in the error
	}{
		{"client trusting another CA", func(c *redismod.Config) { c.TLSCA, c.TLSCert, c.TLSKey = other.CA, p.ClientCert, p.ClientKey },
			[]string{"certificate", "x509"}},
		{"no client certificate", func(c *redismod.Config) { c.TLSCA = p.CA }, []string{"certificate"}},
		{"client certificate of another CA", func(c *redismod.Config) { c.TLSCA, c.TLSCert, c.TLSKey = p.CA, other.ClientCert, other.ClientKey },
			[]string{"certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("rediss://" + srv.addr() + "/0")
			tt.set(&cfg)
			began := time.Now()
			err := startRedisErr(t, cfg, nil)
			if err == nil {
				t.Fatal("Start succeeded, want a TLS error")
			}
			t.Logf("error: %v (after %v)", err, time.Since(began).Round(time.Millisecond))
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %q: Start waited for its context, want the TLS failure at once", err)
			}
			msg := strings.ToLower(err.Error())
			if !strings.Contains(msg, "connect to") {
				t.Fatalf("error %q does not say what failed", err)
			}
			found := false
			for _, w := range tt.want {
				found = found || strings.Contains(msg, w)
			}
			if !found {
				t.Fatalf("error %q: want one of %q", err, tt.want)
			}
		})
	}
}
