package natsmod_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// trustChain is what a server in operator (JWT) mode trusts: an operator,
// its system account, and an account with JetStream, resolved from memory.
type trustChain struct {
	operator nkeys.KeyPair
	claims   *jwt.OperatorClaims
	system   string
	account  nkeys.KeyPair
	resolver *server.MemAccResolver
}

func newTrustChain(t *testing.T) *trustChain {
	t.Helper()
	c := &trustChain{resolver: &server.MemAccResolver{}}
	var err error
	if c.operator, err = nkeys.CreateOperator(); err != nil {
		t.Fatal(err)
	}
	sys, sysJWT := newAccountJWT(t, c.operator, false)
	c.system, _ = sys.PublicKey()
	opPub, _ := c.operator.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name, oc.SystemAccount = "catga-test", c.system
	opJWT, err := oc.Encode(c.operator)
	if err != nil {
		t.Fatal(err)
	}
	if c.claims, err = jwt.DecodeOperatorClaims(opJWT); err != nil {
		t.Fatal(err)
	}
	acc, accJWT := newAccountJWT(t, c.operator, true)
	c.account = acc
	c.store(t, sys, sysJWT)
	c.store(t, acc, accJWT)
	return c
}

// newAccountJWT returns a new account and its JWT signed by signer, with
// JetStream unlimited if js.
func newAccountJWT(t *testing.T, signer nkeys.KeyPair, js bool) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	ac := jwt.NewAccountClaims(pub)
	ac.Name = "catga-" + pub[:8]
	if js {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit,
			Streams: jwt.NoLimit, Consumer: jwt.NoLimit}
	}
	token, err := ac.Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	return kp, token
}

func (c *trustChain) store(t *testing.T, acc nkeys.KeyPair, token string) {
	t.Helper()
	pub, _ := acc.PublicKey()
	if err := c.resolver.Store(pub, token); err != nil {
		t.Fatal(err)
	}
}

// configure puts a server in operator mode with c's trust chain.
func (c *trustChain) configure(o *server.Options) {
	o.TrustedOperators = []*jwt.OperatorClaims{c.claims}
	o.AccountResolver = c.resolver
	o.SystemAccount = c.system
}

// userCreds is a .creds file and the secrets it holds.
type userCreds struct {
	File, JWT, Seed string
}

// writeCreds writes a .creds file of a new user signed by account. A
// non-nil seedOf puts that key's seed in the file in place of the user's.
func writeCreds(t *testing.T, account nkeys.KeyPair, seedOf nkeys.KeyPair) userCreds {
	t.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "svc"
	token, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	data, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	if seedOf != nil { // FormatUserConfig refuses a mismatch: swap the seed in its output
		other, _ := seedOf.Seed()
		data = []byte(strings.Replace(string(data), string(seed), string(other), 1))
		seed = other
	}
	file := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return userCreds{File: file, JWT: token, Seed: string(seed)}
}

func TestCreds_OperatorModeRoundTripOverJetStream(t *testing.T) {
	chain := newTrustChain(t)
	srv := natstest.Start(t, chain.configure)
	cfg := testConfig(srv)
	cfg.Creds = writeCreds(t, chain.account, nil).File
	tr := connect(t, cfg, "creds")
	bus, got := sealedBus(t, tr, "creds")
	publishSealed(t, bus, got, 7)
	publishSealed(t, bus, got, 8)
	pub, _ := chain.account.PublicKey()
	acc, err := srv.Inner().LookupAccount(pub)
	if err != nil {
		t.Fatal(err)
	}
	if n := acc.JetStreamUsage().Streams; n != 3 {
		t.Fatalf("the JWT account holds %d streams, want 3 (events, commands, dlq)", n)
	}
}

// Creds the server cannot trust fail Start with an authorization error
// that shows neither the user's JWT nor its seed.
func TestCreds_UntrustedUserFailsStartWithoutLeakingCreds(t *testing.T) {
	chain := newTrustChain(t)
	strange, _ := newAccountJWT(t, chain.operator, true) // never given to the server
	otherOp, _ := nkeys.CreateOperator()
	foreign, foreignJWT := newAccountJWT(t, otherOp, true)
	chain.store(t, foreign, foreignJWT) // known by name, signed by an operator the server does not trust
	wrongSeed, _ := nkeys.CreateUser()
	srv := natstest.Start(t, chain.configure)
	tests := []struct {
		name  string
		creds userCreds
	}{
		{"user of an account the server does not know", writeCreds(t, strange, nil)},
		{"user of an account of another operator", writeCreds(t, foreign, nil)},
		{"user JWT with another user's seed", writeCreds(t, chain.account, wrongSeed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(srv)
			cfg.Creds = tt.creds.File
			err := startErr(t, cfg)
			if err == nil {
				t.Fatal("untrusted creds connected")
			}
			t.Logf("error: %v", err)
			msg := err.Error()
			for what, secret := range map[string]string{"JWT": tt.creds.JWT, "seed": tt.creds.Seed} {
				if strings.Contains(msg, secret) {
					t.Fatalf("error %q contains the user's %s", msg, what)
				}
			}
			if !strings.Contains(strings.ToLower(msg), "authorization") || !strings.Contains(msg, "connect to") {
				t.Fatalf("error %q does not say the credentials were refused", msg)
			}
		})
	}
}
