package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// node is a node's TLS identity under ca: its certificate followed by the CA's.
func node(t *testing.T, ca *CA, id Identity, now time.Time, life time.Duration) *tls.Certificate {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(key.Public(), id, []string{"127.0.0.1", "node.example"}, now, life)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{cert.Raw, ca.Cert.Raw}, PrivateKey: key, Leaf: cert}
}

func poolOf(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// handshake runs one TLS handshake over loopback and returns both sides' errors.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		if err == nil {
			_, err = io.WriteString(tc, "ok") // TLS 1.3: the client's certificate is checked before this reaches the client
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, client)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	clientErr = tc.Handshake()
	if clientErr == nil {
		buf := make([]byte, 2)
		_, clientErr = io.ReadFull(tc, buf)
	}
	return <-done, clientErr
}

func fixed(c *tls.Certificate) func() *tls.Certificate { return func() *tls.Certificate { return c } }

func allowAll(Identity) error { return nil }

func TestMutualTLS(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", now)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other", now)
	n1 := node(t, ca, Identity{NodeID: "n1", Instance: "i1"}, now, NodeLifetime)
	n2 := node(t, ca, Identity{NodeID: "n2", Instance: "i2"}, now, NodeLifetime)
	stranger := node(t, other, Identity{NodeID: "n2", Instance: "i2"}, now, NodeLifetime)
	expired := node(t, ca, Identity{NodeID: "n2", Instance: "i2"}, now.Add(-200*24*time.Hour), NodeLifetime)
	removed := func(id Identity) error {
		if id.NodeID == "n2" && id.Instance == "i2" {
			return errors.New("node n2 was removed from the cluster")
		}
		return nil
	}
	pool := poolOf(ca)
	server := ServerConfig(pool, fixed(n1), allowAll)

	if se, ce := handshake(t, server, ClientConfig(pool, fixed(n2), "n1", allowAll)); se != nil || ce != nil {
		t.Fatalf("two members: server %v, client %v", se, ce)
	}
	cases := []struct {
		name   string
		server *tls.Config
		client *tls.Config
	}{
		{"no client certificate", server, ClientConfig(pool, func() *tls.Certificate { return &tls.Certificate{} }, "n1", allowAll)},
		{"another cluster's certificate", server, ClientConfig(pool, fixed(stranger), "n1", allowAll)},
		{"an expired certificate", server, ClientConfig(pool, fixed(expired), "n1", allowAll)},
		{"a removed node", ServerConfig(pool, fixed(n1), removed), ClientConfig(pool, fixed(n2), "n1", allowAll)},
		{"the server is not the node meant", server, ClientConfig(pool, fixed(n2), "n3", allowAll)},
		{"the server is another cluster's", ServerConfig(poolOf(other), fixed(stranger), allowAll), ClientConfig(pool, fixed(n2), "", allowAll)},
		{"plain TLS client, no client certificate", server, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}},
		{"TLS 1.2", server, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*n2}}},
	}
	for _, tc := range cases {
		se, ce := handshake(t, tc.server, tc.client)
		if se == nil && ce == nil {
			t.Errorf("%s: the link was made", tc.name)
		}
	}
	// A same id made afresh (another instance) is a new member, not the removed one.
	again := node(t, ca, Identity{NodeID: "n2", Instance: "i3"}, now, NodeLifetime)
	if se, ce := handshake(t, ServerConfig(pool, fixed(n1), removed), ClientConfig(pool, fixed(again), "n1", allowAll)); se != nil || ce != nil {
		t.Fatalf("a fresh instance of a removed id: server %v, client %v", se, ce)
	}
}

func TestPinnedJoin(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("test", now)
	other, _ := NewCA("other", now)
	n1 := node(t, ca, Identity{NodeID: "n1", Instance: "i1"}, now, NodeLifetime)
	// The joiner has no certificate: the listener that serves joins asks for none.
	joinServer := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*n1}}
	if se, ce := handshake(t, joinServer, PinnedConfig(Fingerprint(ca.Cert))); se != nil || ce != nil {
		t.Fatalf("right fingerprint: server %v, client %v", se, ce)
	}
	_, ce := handshake(t, joinServer, PinnedConfig(Fingerprint(other.Cert)))
	if ce == nil || !strings.Contains(ce.Error(), "another cluster") {
		t.Fatalf("wrong fingerprint: %v", ce)
	}
	// A leaf alone (no CA in the chain) is refused too.
	leafOnly := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: n1.Certificate[:1], PrivateKey: n1.PrivateKey}}}
	if _, ce := handshake(t, leafOnly, PinnedConfig(Fingerprint(ca.Cert))); ce == nil {
		t.Fatal("a chain without the CA was accepted")
	}
	// A certificate that names the right CA as its issuer but is signed by another key.
	forged := node(t, other, Identity{NodeID: "n1", Instance: "i1"}, now, NodeLifetime)
	forgedChain := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{forged.Certificate[0], ca.Cert.Raw}, PrivateKey: forged.PrivateKey}}}
	if _, ce := handshake(t, forgedChain, PinnedConfig(Fingerprint(ca.Cert))); ce == nil {
		t.Fatal("a leaf of another CA under this CA's certificate was accepted")
	}
}

func TestCAAndCertificates(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(certPEM, keyPEM)
	if err != nil || !back.Cert.Equal(ca.Cert) || Fingerprint(back.Cert) != Fingerprint(ca.Cert) {
		t.Fatalf("CA round trip: %v", err)
	}
	other, _ := NewCA("other", now)
	_, otherKey, _ := other.PEM()
	if _, err := ParseCA(certPEM, otherKey); err == nil {
		t.Fatal("a CA with another CA's key was read")
	}
	if !strings.HasPrefix(Fingerprint(ca.Cert), "sha256:") || len(Fingerprint(ca.Cert)) != 7+64 {
		t.Fatalf("fingerprint %q", Fingerprint(ca.Cert))
	}
	key, _ := NewKey()
	cert, err := ca.Issue(key.Public(), Identity{NodeID: "n1", Instance: "abc"}, []string{"10.0.0.5", "gate.example"}, now, 100*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kf, _ := KeyFingerprint(key.Public())
	if id, ok := IdentityOf(cert); !ok || id != (Identity{NodeID: "n1", Instance: "abc", Key: kf}) {
		t.Fatalf("identity %+v %v", id, ok)
	}
	if cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Fatal("a node certificate outlives its CA")
	}
	if len(cert.IPAddresses) != 1 || len(cert.DNSNames) != 1 {
		t.Fatalf("names: %v %v", cert.IPAddresses, cert.DNSNames)
	}
	if _, err := ca.Issue(key.Public(), Identity{NodeID: "a/b", Instance: "x"}, nil, now, NodeLifetime); err == nil {
		t.Fatal("a node id with / was issued")
	}
	if _, err := ca.Issue(key.Public(), Identity{NodeID: "n1"}, nil, now, NodeLifetime); err == nil {
		t.Fatal("a certificate without an instance was issued")
	}
	kp, err := KeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParseKey(kp); err != nil || !samePublic(k.Public(), key.Public()) {
		t.Fatalf("key round trip: %v", err)
	}
	if c, err := ParseCert(CertPEM(cert)); err != nil || !c.Equal(cert) {
		t.Fatalf("certificate round trip: %v", err)
	}
}

func TestJoinToken(t *testing.T) {
	ca, _ := NewCA("test", time.Now())
	tok, err := NewJoinToken(ca)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseJoinToken("  " + tok.String() + "\n")
	if err != nil || back != tok || back.CAFingerprint != Fingerprint(ca.Cert) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if !SecretMatches(tok.Secret, SecretHash(tok.Secret)) || SecretMatches("other", SecretHash(tok.Secret)) || SecretMatches(tok.Secret, "") {
		t.Fatal("secret match")
	}
	s := tok.String()
	for name, bad := range map[string]string{
		"empty":             "",
		"other prefix":      strings.Replace(s, "lintel-join-1.", "lintel-join-2.", 1),
		"no fingerprint":    s[:strings.LastIndex(s, ".")],
		"short fingerprint": s[:len(s)-2],
		"upper-case hex":    s[:len(s)-64] + strings.ToUpper(s[len(s)-64:]),
		"short secret":      strings.Replace(s, tok.Secret, tok.Secret[:10], 1),
		"bad secret":        strings.Replace(s, tok.Secret, strings.Repeat("!", 32), 1),
	} {
		if _, err := ParseJoinToken(bad); err == nil {
			t.Errorf("%s: accepted %q", name, bad)
		}
	}
}
