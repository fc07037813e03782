// Package tlsfiles loads a client's TLS settings from files: the CA that
// verifies the server and the client's certificate and key. natsmod and
// redismod read them this way from their *_TLS_CA, *_TLS_CERT and
// *_TLS_KEY variables.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Load adds to tc (when nil, a new config requiring TLS 1.2 at least) the
// CA in file ca and the key pair in files cert and key; an empty name adds
// nothing. env is the variables' prefix ("NATS_TLS"), which names them in
// errors: NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY.
func Load(tc *tls.Config, env, ca, cert, key string) (*tls.Config, error) {
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s_CA: %w", env, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s_CA: %s holds no PEM certificate", env, ca)
		}
		tc.RootCAs = pool
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s_CERT and %s_KEY: %w", env, env, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
