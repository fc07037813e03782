package tlsfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate and its key, and returns their files.
func writePair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoad_CAAndPair(t *testing.T) {
	cert, key := writePair(t)
	tc, err := Load(nil, "X_TLS", cert, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS12 || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Fatalf("config %+v", tc)
	}
	base := &tls.Config{ServerName: "kept"}
	if tc, err := Load(base, "X_TLS", cert, "", ""); err != nil || tc != base || tc.RootCAs == nil {
		t.Fatalf("Load on a base: %v, %v", tc, err)
	}
}

func TestLoad_ErrorsNameTheVariables(t *testing.T) {
	cert, key := writePair(t)
	for _, c := range []struct{ ca, cert, key, want string }{
		{ca: filepath.Join(t.TempDir(), "none"), want: "X_TLS_CA: "},
		{ca: key, want: "X_TLS_CA: " + key + " holds no PEM certificate"},
		{cert: cert, key: cert, want: "X_TLS_CERT and X_TLS_KEY: "},
	} {
		_, err := Load(nil, "X_TLS", c.ca, c.cert, c.key)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Load(%q, %q, %q): %v, want %q...", c.ca, c.cert, c.key, err, c.want)
		}
	}
}
