package clustertests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"lintel/consensus"
	"lintel/pki"
)

// The ALPN names of the links on a node's Raft port (replication.ProtoRaft, ProtoHTTP).
const (
	protoRaft     = "lintel-raft/1"
	protoInternal = "http/1.1"
)

// memberTLS is the TLS configuration a member dials the others with,
// built from n's own DATA_DIR/tls, as a thief of that data dir could.
func memberTLS(t *testing.T, n *node, proto string) *tls.Config {
	t.Helper()
	dir := filepath.Join(n.dir, "tls")
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	// The server's identity is not checked here: the test is of the server.
	return &tls.Config{Certificates: []tls.Certificate{kp}, RootCAs: pool, InsecureSkipVerify: true, NextProtos: []string{proto}, MinVersion: tls.VersionTLS13}
}

// handshake dials addr with cfg and completes a TLS handshake (in TLS 1.3
// a refused client certificate shows on the first read).
func handshake(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil // accepted: the server waits for the client to speak
	}
	if err == nil {
		return nil
	}
	return err
}

func term(t *testing.T, c *cluster, n *node) uint64 {
	t.Helper()
	v, err := c.view(n)
	if err != nil {
		t.Fatal(err)
	}
	return v.Term
}

// Anyone on the building network could speak Raft to a node and move its
// term, then append an entry. Now the Raft port speaks TLS 1.3 to members
// only: hashicorp/raft's own plain TCP transport gets no answer, the term
// stays, and a client certificate of another CA, or none, is refused.
func TestRaftPortSpeaksOnlyToMembers(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader(10 * time.Second)
	var follower *node
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	before := term(t, c, follower)

	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("attacker"), Addr: []byte(trans.LocalAddr())},
		Term:      before + 1000, PrevLogEntry: 0, PrevLogTerm: 0, LeaderCommitIndex: 0,
		Entries: []*raft.Log{{Index: 1, Term: before + 1000, Type: raft.LogCommand, Data: []byte{7, 1, '{', '}'}}},
	}
	var out raft.AppendEntriesResponse
	start := time.Now()
	err = trans.AppendEntries("n", raft.ServerAddress(follower.raft), req, &out)
	if err == nil {
		t.Fatalf("a plain Raft client got an answer: %+v", out)
	}
	t.Logf("plain AppendEntries to %s: %v after %v (answer term %d)", follower, err, time.Since(start).Round(time.Millisecond), out.Term)
	time.Sleep(time.Second)
	if after := term(t, c, follower); after != before {
		t.Fatalf("the term moved from %d to %d", before, after)
	}
	var check struct{ OK bool }
	c.expect(follower, 200, "GET", "/api/v1/self-check", nil).decode(&check)
	if !check.OK {
		t.Fatal("self-check fails after the plain Raft client")
	}

	// Another CA's certificate for the same node id, and no certificate.
	now := time.Now()
	other, _ := pki.NewCA("stranger", now)
	key, _ := pki.NewKey()
	inst := readInstance(t, follower)
	cert, _ := other.Issue(key.Public(), pki.Identity{NodeID: leader.id, Instance: inst}, []string{"127.0.0.1"}, now, time.Hour)
	forged := tls.Certificate{Certificate: [][]byte{cert.Raw, other.Cert.Raw}, PrivateKey: key}
	for name, cfg := range map[string]*tls.Config{
		"another CA's certificate": {Certificates: []tls.Certificate{forged}, InsecureSkipVerify: true, NextProtos: []string{protoRaft}},
		"no certificate":           {InsecureSkipVerify: true, NextProtos: []string{protoRaft}},
	} {
		if err := handshake(follower.raft, cfg); err == nil {
			t.Errorf("%s: the Raft port let it in", name)
		}
	}
	// A member's own certificate is let in: the refusals above are not the
	// test's failing to speak TLS.
	if err := handshake(follower.raft, memberTLS(t, leader, protoRaft)); err != nil {
		t.Fatalf("a member's certificate was refused: %v", err)
	}
}

func readInstance(t *testing.T, n *node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"instance":\s*"([0-9a-f]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no instance in %s", b)
	}
	return string(m[1])
}

// A node joins only with the cluster's current token: without one, with a
// wrong one, or with another cluster's, it exits 1 with a one-line reason,
// no node adds it, and its data dir holds no state. A rotated token
// replaces the old one.
func TestJoinNeedsTheToken(t *testing.T) {
	c := newCluster(t, 1)
	first := c.nodes[0]
	first.start("")
	c.waitReady(first, 20*time.Second)
	c.login(first, 20*time.Second)

	var jt struct {
		JoinToken     string `json:"join_token"`
		CAFingerprint string `json:"ca_fingerprint"`
	}
	c.expect(first, 200, "GET", "/api/v1/cluster/join-token", nil).decode(&jt)
	if file, _ := os.ReadFile(filepath.Join(first.dir, "join-token")); strings.TrimSpace(string(file)) != jt.JoinToken {
		t.Fatalf("DATA_DIR/join-token %q, the API %q", file, jt.JoinToken)
	}
	if fi, err := os.Stat(filepath.Join(first.dir, "join-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("join-token file mode: %v %v", fi.Mode(), err)
	}
	tok, err := pki.ParseJoinToken(jt.JoinToken)
	if err != nil || tok.CAFingerprint != jt.CAFingerprint {
		t.Fatalf("token %q: %v", jt.JoinToken, err)
	}
	wrongSecret := "lintel-join-1." + strings.Repeat("a", 32) + "." + strings.TrimPrefix(tok.CAFingerprint, "sha256:")
	otherCA, _ := pki.NewCA("another cluster", time.Now())
	otherTok, _ := pki.NewJoinToken(otherCA)

	joiner := func(name string, extra ...string) (int, string, string) {
		dir := filepath.Join(c.dir, name)
		args := []string{"serve", "--data-dir", dir, "--node-id", name, "--log-level", "warn",
			"--http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--raft", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--gossip", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--readers", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--join", first.gossip}
		code, _, stderr := runLintel(t, 30*time.Second, append(args, extra...)...)
		return code, dir, stderr
	}
	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		return lines[len(lines)-1]
	}
	for _, tc := range []struct{ name, token, want string }{
		{"no-token", "", "--join-token"},
		{"wrong-secret", wrongSecret, "join token is not this cluster's"},
		{"other-cluster", otherTok.String(), "another cluster"},
		{"damaged", "lintel-join-1.abc", "--join-token"},
	} {
		var extra []string
		if tc.token != "" {
			extra = []string{"--join-token", tc.token}
		}
		code, dir, stderr := joiner(tc.name, extra...)
		line := lastLine(stderr)
		if code == 0 || !strings.Contains(line, tc.want) {
			t.Errorf("%s: exit %d, last line %q; want a refusal naming %q", tc.name, code, line, tc.want)
		}
		if has, _ := consensus.HasState(dir); has {
			t.Errorf("%s: the refused node holds Raft state", tc.name)
		}
		if _, err := os.Stat(filepath.Join(dir, "tls", "node.crt")); err == nil {
			t.Errorf("%s: the refused node holds a certificate", tc.name)
		}
		t.Logf("%s: exit %d: %s", tc.name, code, line)
	}
	if v, _ := c.view(first); len(v.Nodes) != 1 {
		t.Fatalf("a refused node was added: %+v", v.Nodes)
	}

	// Rotation: the old token no longer lets anyone in, the new one does.
	var rotated struct {
		JoinToken string `json:"join_token"`
	}
	c.expect(first, 200, "POST", "/api/v1/cluster/join-token", nil).decode(&rotated)
	if rotated.JoinToken == jt.JoinToken || !strings.HasSuffix(rotated.JoinToken, strings.TrimPrefix(tok.CAFingerprint, "sha256:")) {
		t.Fatalf("rotated token %q (was %q)", rotated.JoinToken, jt.JoinToken)
	}
	eventually(t, 5*time.Second, "DATA_DIR/join-token rewritten", func() error {
		if b, _ := os.ReadFile(filepath.Join(first.dir, "join-token")); strings.TrimSpace(string(b)) != rotated.JoinToken {
			return fmt.Errorf("file holds %q", b)
		}
		return nil
	})
	if code, _, stderr := joiner("old-token", "--join-token", jt.JoinToken); code == 0 || !strings.Contains(lastLine(stderr), "join token is not this cluster's") {
		t.Fatalf("the old token after a rotation: exit %d %q", code, lastLine(stderr))
	}
	second := &node{c: c, id: "node2", dir: filepath.Join(c.dir, "node2"), logPath: filepath.Join(c.dir, "node2.log"), building: "Building 2", logLevel: "info",
		http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), raft: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		gossip: fmt.Sprintf("127.0.0.1:%d", freePort(t)), readers: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	c.nodes = append(c.nodes, second)
	second.start(first.gossip) // the harness passes the file's token: the rotated one
	c.waitFormed(c.nodes, 1, 30*time.Second)
	for _, f := range []string{"node.key", "node.crt", "ca.crt", "gossip.key"} {
		if fi, err := os.Stat(filepath.Join(second.dir, "tls", f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	// Nothing in a data dir is readable by anyone but its user.
	c.expect(first, 200, "POST", "/api/v1/cluster/snapshot", nil)
	for _, n := range c.nodes {
		filepath.WalkDir(n.dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if fi, err := d.Info(); err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is mode %v", p, fi.Mode().Perm())
			}
			return nil
		})
	}
	// A restart needs no token.
	if _, code, err := second.term(5 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop: %d %v", code, err)
	}
	second.start("")
	c.waitReady(second, 30*time.Second)
}

// A removed node's certificate is refused from then on, on its open links
// too; a member's is let in before (the control).
func TestRemovedNodesCertificateIsRefused(t *testing.T) {
	c := startCluster(t, 3)
	victim := c.nodes[2]
	cfgRaft, cfgHTTP := memberTLS(t, victim, protoRaft), memberTLS(t, victim, protoInternal)
	for _, n := range c.nodes[:2] {
		if err := handshake(n.raft, cfgRaft); err != nil {
			t.Fatalf("before removal, %s refused %s's certificate: %v", n, victim, err)
		}
	}
	c.expect(c.nodes[0], 204, "DELETE", "/api/v1/cluster/nodes/"+victim.id, nil)
	for _, n := range c.nodes[:2] {
		eventually(t, 10*time.Second, n.id+" refuses the removed node's certificate", func() error {
			if err := handshake(n.raft, cfgRaft); err == nil {
				return fmt.Errorf("%s still lets %s in", n, victim)
			}
			return nil
		})
		if code, err := internalCall(n, cfgHTTP, "/internal/v1/status", randomID(), time.Now()); err == nil && code == 200 {
			t.Errorf("%s answered an internal call with the removed node's certificate", n)
		}
	}
	victim.kill()
	if _, _, err := c.writeUntilAccepted(c.nodes[1], "after the removal", 10*time.Second, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c.nodes = c.nodes[:2]
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// internalCall posts an internal call to n's Raft port with a chosen
// request id and time.
func internalCall(n *node, cfg *tls.Config, path, id string, at time.Time) (int, error) {
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}}
	defer cl.CloseIdleConnections()
	req, _ := http.NewRequest("POST", "https://"+n.raft+path, nil)
	req.Header.Set("X-Lintel-Request-Id", id)
	req.Header.Set("X-Lintel-Time", strconv.FormatInt(at.UnixNano(), 10))
	res, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// An internal call is answered once: the same request id again is refused
// (409), and so is one with a time far from the node's clock (401). The
// internal paths are not served on the public HTTP address at all.
func TestInternalCallsRefuseReplays(t *testing.T) {
	c := startCluster(t, 3)
	a, b := c.nodes[0], c.nodes[1]
	cfg := memberTLS(t, b, protoInternal)
	id := randomID()
	if code, err := internalCall(a, cfg, "/internal/v1/status", id, time.Now()); err != nil || code != 200 {
		t.Fatalf("first call: %d %v", code, err)
	}
	for i := range 3 {
		if code, err := internalCall(a, cfg, "/internal/v1/status", id, time.Now()); err != nil || code != http.StatusConflict {
			t.Fatalf("replay %d: %d %v, want 409", i+1, code, err)
		}
	}
	if code, err := internalCall(a, cfg, "/internal/v1/status", randomID()+"x", time.Now().Add(-10*time.Minute)); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("a stale call: %d %v, want 401", code, err)
	}
	for _, p := range []string{"/internal/v1/status", "/internal/v1/apply", "/internal/v1/unlock"} {
		r, err := c.do(a, "POST", p, nil)
		if err != nil || r.status != 404 {
			t.Errorf("%s on the public HTTP address: %v %v, want 404", p, r, err)
		}
	}
}

// withSiteCert makes a site certificate for 127.0.0.1 (its own small CA,
// as a site's IT would), and points the cluster's client at it.
func withSiteCert(t *testing.T, c *cluster) (certFile, keyFile string) {
	t.Helper()
	ca, err := pki.NewCA("Site IT", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.NewKey()
	cert, err := ca.Issue(key.Public(), pki.Identity{NodeID: "console", Instance: "site"}, []string{"127.0.0.1", "localhost"}, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(c.dir, "site.crt"), filepath.Join(c.dir, "site.key")
	kp, _ := pki.KeyPEM(key)
	os.WriteFile(certFile, append(pki.CertPEM(cert), pki.CertPEM(ca.Cert)...), 0o600)
	os.WriteFile(keyFile, kp, 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tr := newTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	c.client = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	c.scheme = "https"
	return certFile, keyFile
}

// A capture of every packet on loopback while a cluster serving HTTPS
// (the site's own certificate) takes writes through a follower shows no
// API text, no password, no password hash and no join token.
func TestCaptureShowsNoSecrets(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump is needed (apt-get install tcpdump; .ci/run installs it)")
	}
	c := newCluster(t, 3)
	certFile, keyFile := withSiteCert(t, c)
	for _, n := range c.nodes {
		n.extra = []string{"--tls-cert", certFile, "--tls-key", keyFile}
	}
	pcap := filepath.Join(c.dir, "lo.pcap")
	ports := []string{}
	for _, n := range c.nodes {
		for _, a := range []string{n.http, n.raft, n.gossip} {
			_, p, _ := net.SplitHostPort(a)
			ports = append(ports, "port "+p)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dump := exec.CommandContext(ctx, "tcpdump", "-i", "lo", "-U", "-n", "-s", "0", "-w", pcap, strings.Join(ports, " or "))
	errPath := filepath.Join(c.dir, "tcpdump.err")
	errFile, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	dump.Stderr = errFile
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	dumpErr := func() string { b, _ := os.ReadFile(errPath); return string(b) }
	eventually(t, 10*time.Second, "tcpdump listening", func() error {
		if !strings.Contains(dumpErr(), "listening on") {
			return fmt.Errorf("tcpdump: %s", dumpErr())
		}
		return nil
	})

	startNodes(c) // the joins (certificates and gossip key handed over) are in the capture
	follower := c.nodes[1]
	if follower == c.leader(10*time.Second) {
		follower = c.nodes[2]
	}
	const marker = "Zebulon-Capture-Marker"
	for i := range 20 {
		c.expect(follower, 201, "POST", "/api/v1/cardholders", map[string]any{"first_name": marker, "last_name": fmt.Sprint(i), "email": fmt.Sprintf("z%d@example.com", i)})
	}
	c.expect(follower, 201, "POST", "/api/v1/sites", map[string]string{"name": marker + " site"})
	c.expect(c.nodes[0], 200, "GET", "/api/v1/cardholders?q="+marker+"&consistency=strong", nil)
	time.Sleep(500 * time.Millisecond)
	dump.Process.Signal(syscall.SIGINT)
	dump.Wait()

	b, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 50_000 {
		t.Fatalf("the capture holds %d bytes: it did not see the cluster's traffic (%s)", len(b), dumpErr())
	}
	for _, secret := range []string{marker, adminPassword, "$2a$", "/api/v1/", "/internal/v1/", "lintel-join-1.", "cluster_secret", "password"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the capture shows %q", secret)
		}
	}
	t.Logf("capture of %d bytes on loopback (HTTP, Raft and gossip ports of 3 nodes): none of the secrets", len(b))
}

// On an address other than loopback the console and API are HTTPS only,
// with the node's certificate of the cluster CA; the session cookie is
// Secure; an activation link carries the CA's fingerprint and the wallet
// trusts the node only under it.
func TestHTTPSOffLoopback(t *testing.T) {
	c := newCluster(t, 1)
	n := c.nodes[0]
	_, port, _ := net.SplitHostPort(n.http)
	n.extra = []string{"--http", "0.0.0.0:" + port, "--advertise-http", "127.0.0.1:" + port}
	n.start("")
	caFile := filepath.Join(n.dir, "tls", "ca.crt")
	eventually(t, 20*time.Second, "the cluster CA written", func() error {
		_, err := os.Stat(caFile)
		return err
	})
	caPEM, _ := os.ReadFile(caFile)
	ca, err := pki.ParseCert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	tr := newTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	c.client, c.scheme = &http.Client{Transport: tr, Timeout: 15 * time.Second}, "https"
	c.waitReady(n, 20*time.Second)

	// Plain HTTP is not served.
	if res, err := http.Get("http://" + n.http + "/healthz"); err == nil {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatalf("plain HTTP served off loopback: %s", body)
		}
	}
	// The login's cookie is Secure.
	r := c.expect(n, 200, "POST", "/api/v1/session", map[string]string{"email": adminEmail, "password": adminPassword})
	if ck := r.header.Get("Set-Cookie"); !strings.Contains(ck, "Secure") || !strings.Contains(ck, "HttpOnly") {
		t.Fatalf("session cookie over HTTPS: %q", ck)
	}
	c.login(n, 10*time.Second)

	c.loadCredits(t.TempDir(), n, n, "PO-HTTPS", 10)
	var site struct{ ID string }
	c.expect(n, 201, "POST", "/api/v1/sites", map[string]string{"name": "Over HTTPS"}).decode(&site)
	c.raw(n, 201, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = Gate\n")
	var card struct{ ID string }
	c.expect(n, 201, "POST", "/api/v1/sites/"+site.ID+"/cards", map[string]string{
		"first_name": "Ada", "last_name": "Pinned", "email": "ada@example.com", "reader_config": "Gate", "private_id": "4242"}).decode(&card)
	c.expect(n, 200, "POST", "/api/v1/cards/"+card.ID+"/send", nil)
	var outbox struct{ Items []struct{ Body string } }
	c.expect(n, 200, "GET", "/api/v1/outbox", nil).decode(&outbox)
	if len(outbox.Items) != 1 {
		t.Fatalf("outbox %+v", outbox)
	}
	link := regexp.MustCompile(`https://\S+/activate/\S+`).FindString(outbox.Items[0].Body)
	fp := pki.Fingerprint(ca)
	if !strings.HasPrefix(link, "https://127.0.0.1:"+port+"/activate/") || !strings.HasSuffix(link, "#ca="+fp) {
		t.Fatalf("activation link %q: want https on the advertised address and #ca=%s", link, fp)
	}
	// A link whose fingerprint was changed is refused before it is used.
	wallet := filepath.Join(c.dir, "wallet.json")
	last := fp[len(fp)-1:]
	flip := map[string]string{"0": "1"}[last]
	if flip == "" {
		flip = "0"
	}
	tampered := strings.TrimSuffix(link, last) + flip
	if code, _, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, tampered); code == 0 || !strings.Contains(errs, "another cluster") {
		t.Fatalf("a link with another CA's fingerprint: exit %d %s", code, errs)
	}
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, link); code != 0 {
		t.Fatalf("wallet activate over pinned HTTPS: %d %s %s", code, out, errs)
	}
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "checkin", "--wallet", wallet, "--node", "https://127.0.0.1:"+port); code != 0 {
		t.Fatalf("wallet checkin over pinned HTTPS: %d %s %s", code, out, errs)
	}
}

// A building that was away while another node joined (perhaps the leader
// now) does not know that node's certificate from its own replica: a member
// it knows vouches for it. Here the stale node cannot catch up (no quorum
// is left), so only the vouching can let the new node's call in.
func TestStaleMemberAdmitsANewerNode(t *testing.T) {
	c := startCluster(t, 5)
	a, b, stale, e, f := c.nodes[0], c.nodes[1], c.nodes[2], c.nodes[3], c.nodes[4]
	stale.kill() // (a paused process would read what the leader sent meanwhile from its socket)
	d := &node{c: c, id: "node6", dir: filepath.Join(c.dir, "node6"), logPath: filepath.Join(c.dir, "node6.log"), building: "Building 6", logLevel: "info",
		http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), raft: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		gossip: fmt.Sprintf("127.0.0.1:%d", freePort(t)), readers: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	d.start(a.gossip)
	c.nodes = []*node{a, b, e, f, d}
	c.waitReady(d, 30*time.Second)
	// b is removed but keeps running: the stale node still knows it as a
	// member, and b's replica knows d.
	c.expect(a, 204, "DELETE", "/api/v1/cluster/nodes/"+b.id, nil)
	for _, n := range []*node{a, e, f} {
		n.kill()
	}
	stale.start("")
	c.nodes = []*node{stale, d, b}
	c.waitHealthy(stale, 20*time.Second)
	cfg := memberTLS(t, d, protoInternal)
	eventually(t, 15*time.Second, "the stale node admits the newer node", func() error {
		code, err := internalCall(stale, cfg, "/internal/v1/status", randomID(), time.Now())
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("answered %d", code)
		}
		return nil
	})
	if !strings.Contains(tail(stale.logPath, 1000), "on another member's word") {
		t.Errorf("the stale node did not say it admitted the new node on another member's word")
	}
	// The stale node holds no newer state (no quorum): it was the vouching.
	for _, n := range c.nodes {
		n.kill()
	}
	c.nodes = nil
}
