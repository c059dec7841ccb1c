package node_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"lintel/consensus/state"
	"lintel/internal/testnode"
	"lintel/node"
	"lintel/pki"
)

func certSerial(t *testing.T, dir string) (string, time.Time) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "tls", "node.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String(), c.NotAfter
}

// Certificates renew before they expire, with the same key, while the
// cluster runs: long after the first ones expired, a write through a
// follower over fresh links and a new node's join still work.
func TestCertificatesRenewWithoutDowntime(t *testing.T) {
	const life = 4 * time.Second
	short := func(c *node.Config) { c.CertLifetime = life }
	var dirs []string
	keep := func(c *node.Config) { short(c); dirs = append(dirs, c.DataDir) }
	n1 := testnode.StartWith(t, "r1", keep)
	testnode.WaitReady(t, n1)
	n2 := testnode.StartWith(t, "r2", keep, n1.GossipAddr())
	testnode.WaitReady(t, n2)
	first, firstExpiry := certSerial(t, dirs[1])

	time.Sleep(life + time.Second) // every first certificate has expired
	if s, exp := certSerial(t, dirs[1]); s == first || !exp.After(firstExpiry) {
		t.Fatalf("r2's certificate was not renewed: serial %s, expires %v (first %v)", s, exp, firstExpiry)
	}
	n3 := testnode.StartWith(t, "r3", short, n1.GossipAddr())
	testnode.WaitReady(t, n3)
	c3 := testnode.Login(t, n3)
	if r := c3.Do(t, "POST", "/api/v1/sites", `{"name":"After renewal"}`, nil); r.StatusCode != 201 {
		t.Fatalf("write through a follower after renewal: %d %s", r.StatusCode, r.Body)
	}
}

// The state checks a joiner's token by its own copy of pki.SecretHash.
func TestStateAndPKIHashJoinTokensAlike(t *testing.T) {
	ca, _ := pki.NewCA("t", time.Now())
	tok, _ := pki.NewJoinToken(ca)
	h, ok := state.JoinSecretHash(tok.String())
	if !ok || h != pki.SecretHash(tok.Secret) {
		t.Fatalf("state %q, pki %q", h, pki.SecretHash(tok.Secret))
	}
	if _, ok := state.JoinSecretHash("lintel-join-1."); ok {
		t.Fatal("a token without a secret was read")
	}
}
