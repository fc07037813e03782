package natsmod_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
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

// mutualTLS makes the server require TLS and a client certificate of p's CA.
func mutualTLS(t *testing.T, p *testPKI) func(*server.Options) {
	return func(o *server.Options) {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.ServerCert, KeyFile: p.ServerKey, CaFile: p.CA, Verify: true})
		if err != nil {
			t.Fatalf("server TLS config: %v", err)
		}
		o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tc, 2
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

// publishSealed publishes Sealed{n}, retrying while the broker is away,
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

func TestTLS_MutualTLSRoundTripThroughBus(t *testing.T) {
	p := newTestPKI(t, "catga")
	srv := natstest.Start(t, mutualTLS(t, p))
	cfg := testConfig(srv)
	cfg.TLSCA, cfg.TLSCert, cfg.TLSKey = p.CA, p.ClientCert, p.ClientKey
	tr := connect(t, cfg, "tls")
	bus, got := sealedBus(t, tr, "tls")
	publishSealed(t, bus, got, 42)
	if !strings.Contains(cfg.String(), "TLS:true") {
		t.Fatalf("Config.String() = %s, want TLS:true", cfg)
	}
}

// A client the server cannot verify, or that cannot verify the server,
// fails Start at once with an error that says TLS or certificate.
func TestTLS_StartFailsClearlyWithoutClientCertOrWithAnotherCA(t *testing.T) {
	p := newTestPKI(t, "catga")
	other := newTestPKI(t, "other")
	srv := natstest.Start(t, mutualTLS(t, p))
	tests := []struct {
		name string
		set  func(*natsmod.Config)
		want []string // one of these, lowercased, is in the error
	}{
		// With TLS 1.3 the server refuses a client certificate after the
		// client's side of the handshake is done: the client reads either
		// the alert ("remote error: tls: certificate required") or, when its
		// CONNECT loses the race, "tls error: connection closed by remote
		// after TLS handshake". Both name TLS.
		{"no client certificate", func(c *natsmod.Config) { c.TLSCA = p.CA }, []string{"certificate", "tls"}},
		{"client trusting another CA", func(c *natsmod.Config) { c.TLSCA, c.TLSCert, c.TLSKey = other.CA, p.ClientCert, p.ClientKey },
			[]string{"certificate", "x509"}},
		{"client certificate of another CA", func(c *natsmod.Config) { c.TLSCA, c.TLSCert, c.TLSKey = p.CA, other.ClientCert, other.ClientKey },
			[]string{"certificate", "tls"}},
		{"no TLS at all", func(*natsmod.Config) {}, []string{"secure connection required", "tls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(srv)
			tt.set(&cfg)
			began := time.Now()
			err := startErr(t, cfg)
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
