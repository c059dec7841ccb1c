package replication

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"lintel/pki"
)

type testCA struct {
	ca *pki.CA
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := pki.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca}
}

func (c *testCA) cert(t *testing.T, id string) *tls.Certificate {
	t.Helper()
	key, _ := pki.NewKey()
	leaf, err := c.ca.Issue(key.Public(), pki.Identity{NodeID: id, Instance: "i-" + id}, []string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw, c.ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}
}

// admitSet admits the node ids in it; tests remove one to model a removal.
type admitSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (a *admitSet) admit(id pki.Identity) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ids[id.NodeID] {
		return errors.New("not a member")
	}
	return nil
}

func (a *admitSet) remove(id string) {
	a.mu.Lock()
	delete(a.ids, id)
	a.mu.Unlock()
}

func startMux(t *testing.T, ca *testCA, id string, set *admitSet) *Mux {
	t.Helper()
	cert := ca.cert(t, id)
	m, err := ListenMux(MuxConfig{Bind: "127.0.0.1:0", CA: func() *x509.Certificate { return ca.ca.Cert },
		Cert: func() *tls.Certificate { return cert }, Admit: set.admit})
	if err != nil {
		t.Fatal(err)
	}
	m.Serve()
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMuxLinksMembersOnly(t *testing.T) {
	ca := newTestCA(t)
	set := &admitSet{ids: map[string]bool{"n1": true, "n2": true}}
	m1, m2 := startMux(t, ca, "n1", set), startMux(t, ca, "n2", set)
	addr := m1.Addr().String()

	// A member links, and Raft on n1 gets the connection.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := m1.RaftLayer().Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := m2.RaftLayer().Dial(raft.ServerAddress(addr), time.Second)
	if err != nil {
		t.Fatalf("a member could not link: %v", err)
	}
	defer c.Close()
	var in net.Conn
	select {
	case in = <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("Raft never got the member's connection")
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	in.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("link carries %q %v", buf, err)
	}

	// A plain TCP client (Raft's own bytes) gets nothing back and is closed.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0, 0x81, 0xa4}) // rpcAppendEntries, a msgpack map
	raw.SetReadDeadline(time.Now().Add(handshakeTimeout + time.Second))
	n, err := raw.Read(make([]byte, 64))
	raw.Close()
	if n != 0 && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("a plain client got %d bytes back (%v)", n, err)
	}

	// No certificate, and another cluster's, are refused.
	other := newTestCA(t)
	for name, cfg := range map[string]*tls.Config{
		"none":    {InsecureSkipVerify: true, NextProtos: []string{ProtoRaft}},
		"another": {InsecureSkipVerify: true, NextProtos: []string{ProtoRaft}, Certificates: []tls.Certificate{*other.cert(t, "n2")}},
	} {
		if err := tlsAccepted(addr, cfg); err == nil {
			t.Errorf("%s certificate: let in", name)
		}
	}

	// A node removed: its new links are refused, its open one is closed.
	set.remove("n2")
	m1.Recheck()
	in.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := in.Read(buf); err == nil {
		t.Fatal("the removed node's open link still reads")
	}
	if err := tlsAccepted(addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ProtoRaft}, Certificates: []tls.Certificate{*ca.cert(t, "n2")}}); err == nil {
		t.Fatal("a removed node's certificate was let in")
	}
}

// tlsAccepted completes a handshake and waits a moment for the server's
// verdict on the client certificate (TLS 1.3 sends it after the client's Finished).
func tlsAccepted(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// Internal calls go over the mutual-TLS link; each request id is taken
// once, a stale time is refused, and a node removed since is refused.
func TestInternalCallsOverTheLink(t *testing.T) {
	ca := newTestCA(t)
	set := &admitSet{ids: map[string]bool{"n1": true, "n2": true}}
	m1, m2 := startMux(t, ca, "n1", set), startMux(t, ca, "n2", set)
	f := &Forwarder{NodeID: "n1", Admit: set.admit}
	srv := &http.Server{Handler: f.StatusHandler(func() NodeStatus { return NodeStatus{RaftState: "leader", AppliedIndex: 9} })}
	go srv.Serve(m1.HTTPListener())
	defer srv.Close()

	client := NewInternalClient(m2, nil, 5*time.Second)
	call := func(id string, at time.Time) int {
		req, _ := http.NewRequest("POST", "https://"+m1.Addr().String()+PathStatus, nil)
		req.Header.Set("X-Lintel-Request-Id", id)
		req.Header.Set("X-Lintel-Time", strconv.FormatInt(at.UnixNano(), 10))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode == 200 {
			var st NodeStatus
			if json.NewDecoder(res.Body).Decode(&st); st.AppliedIndex != 9 {
				t.Fatalf("status %+v", st)
			}
		}
		return res.StatusCode
	}
	id := strings.Repeat("ab", 16)
	if code := call(id, time.Now()); code != 200 {
		t.Fatalf("first call: %d", code)
	}
	if code := call(id, time.Now()); code != http.StatusConflict {
		t.Fatalf("replayed request id: %d, want 409", code)
	}
	if code := call(strings.Repeat("cd", 16), time.Now().Add(-3*time.Minute)); code != http.StatusUnauthorized {
		t.Fatalf("stale call: %d, want 401", code)
	}
	if code := call("short", time.Now()); code != http.StatusBadRequest {
		t.Fatalf("malformed request id: %d, want 400", code)
	}
	// Forwarder.Status makes fresh ids itself.
	g := &Forwarder{NodeID: "n2", Client: client}
	for range 3 {
		if st, err := g.Status(context.Background(), "n1", m1.Addr().String()); err != nil || st.RaftState != "leader" {
			t.Fatalf("status: %+v %v", st, err)
		}
	}
	set.remove("n2")
	client.CloseIdleConnections()
	if code, err := tryCall(client, m1.Addr().String()); err == nil && code == 200 {
		t.Fatal("a removed node's call was answered")
	}
}

func tryCall(cl *http.Client, addr string) (int, error) {
	req, _ := http.NewRequest("POST", "https://"+addr+PathStatus, nil)
	req.Header.Set("X-Lintel-Request-Id", strings.Repeat("ef", 16))
	req.Header.Set("X-Lintel-Time", strconv.FormatInt(time.Now().UnixNano(), 10))
	res, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func TestReplayCacheIsBounded(t *testing.T) {
	var c replayCache
	now := time.Now()
	id := strings.Repeat("01", 16)
	if !c.fresh(id, now) || c.fresh(id, now.Add(time.Minute)) {
		t.Fatal("an id seen a minute ago was taken again")
	}
	// Remembered across one rotation, forgotten after two (it is stale by then).
	if c.fresh(id, now.Add(2*maxClockSkew+time.Second)) {
		t.Fatal("forgotten after one rotation")
	}
	if !c.fresh(id, now.Add(5*maxClockSkew)) {
		t.Fatal("never forgotten")
	}
}

// The join exchange: the right token gets a certificate; a wrong secret,
// another cluster's CA, a key the joiner does not hold and a flood are refused.
func TestJoinExchange(t *testing.T) {
	ca := newTestCA(t)
	tok, _ := pki.NewJoinToken(ca.ca)
	cert := ca.cert(t, "n1")
	var admitted []string
	js := &JoinServer{Cert: func() *tls.Certificate { return cert },
		Admit: func(_ context.Context, req JoinRequest, pub crypto.PublicKey, ekm []byte) JoinAnswer {
			if !pki.JoinProofMatches(req.Proof, pki.SecretHash(tok.Secret), ekm) {
				return JoinAnswer{Error: &JoinError{Code: "join_refused", Message: "wrong token", Final: true}}
			}
			admitted = append(admitted, req.NodeID)
			return JoinAnswer{Cert: []byte("cert"), CA: pki.CertPEM(ca.ca.Cert), GossipKey: make([]byte, 32)}
		}}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go js.Serve(c)
		}
	}()
	key, _ := pki.NewKey()
	ctx := context.Background()
	req := JoinRequest{NodeID: "n2", Instance: "0123456789abcdef", Hosts: []string{"127.0.0.1"}}
	if ans, err := RequestJoin(ctx, ln.Addr().String(), tok, req, key); err != nil || string(ans.Cert) != "cert" {
		t.Fatalf("right token: %+v %v", ans, err)
	}
	wrong := tok
	wrong.Secret = strings.Repeat("a", 32)
	var je *JoinError
	if _, err := RequestJoin(ctx, ln.Addr().String(), wrong, req, key); !errors.As(err, &je) || !je.Final || je.Code != "join_refused" {
		t.Fatalf("wrong secret: %v", err)
	}
	otherTok, _ := pki.NewJoinToken(newTestCA(t).ca)
	if _, err := RequestJoin(ctx, ln.Addr().String(), otherTok, req, key); !errors.As(err, &je) || je.Code != "other_cluster" {
		t.Fatalf("another cluster's token: %v", err)
	}
	// A request naming a key it does not hold.
	other, _ := pki.NewKey()
	if _, err := RequestJoin(ctx, ln.Addr().String(), tok, req, lyingSigner{pub: other.Public(), Signer: key}); !errors.As(err, &je) || je.Code != "invalid_join" {
		t.Fatalf("a key it does not hold: %v", err)
	}
	if len(admitted) != 1 {
		t.Fatalf("admitted %v", admitted)
	}
	// A flood from one host is cut to the burst, then one a second.
	refused := 0
	for range 20 {
		if _, err := RequestJoin(ctx, ln.Addr().String(), wrong, req, key); err != nil && !errors.As(err, &je) {
			refused++
		}
	}
	if refused < 10 {
		t.Fatalf("only %d of 20 flooded joins were cut off", refused)
	}
}

// lyingSigner signs with one key and names another.
type lyingSigner struct {
	pub crypto.PublicKey
	crypto.Signer
}

func (l lyingSigner) Public() crypto.PublicKey { return l.pub }

// A host that opens many connections and never speaks holds at most its
// share of the handshake slots: a member from another host still links.
func TestMuxFloodFromOneHostLeavesRoomForMembers(t *testing.T) {
	ca := newTestCA(t)
	set := &admitSet{ids: map[string]bool{"n1": true, "n2": true}}
	m1, m2 := startMux(t, ca, "n1", set), startMux(t, ca, "n2", set)
	go func() {
		for {
			c, err := m1.RaftLayer().Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(m1.Addr().String())
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	var flood []net.Conn
	for range 400 {
		c, err := d.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			continue
		}
		flood = append(flood, c)
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	if len(flood) < 300 {
		t.Fatalf("only %d flood connections opened", len(flood))
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	c, err := m2.RaftLayer().Dial(raft.ServerAddress(m1.Addr().String()), 2*time.Second)
	if err != nil {
		t.Fatalf("a member could not link during a flood of %d idle connections from one host: %v", len(flood), err)
	}
	c.Close()
	t.Logf("a member linked in %v during a flood of %d idle connections from another host", time.Since(start).Round(time.Millisecond), len(flood))

	// A member that opens many links at once (a follower forwarding 64
	// writes) waits its turn instead of being refused.
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 64 {
		wg.Go(func() {
			c, err := m2.RaftLayer().Dial(raft.ServerAddress(m1.Addr().String()), 3*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			c.Close()
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 64 links a member opened at once were refused", n)
	}
}
