package replication

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"lintel/pki"
)

// The links on a node's Raft port, told apart by ALPN.
const (
	ProtoRaft = "lintel-raft/1"
	// ProtoHTTP: the internal HTTP calls. net/http serves a TLS connection
	// itself only when ALPN chose HTTP/1.1 (or nothing); any other name it
	// hands to TLSNextProto or closes.
	ProtoHTTP = "http/1.1"
)

// handshakeTimeout bounds how long a connection may take to prove it is a
// member; maxHandshakes bounds how many prove at once, so a flood of
// half-open connections costs the node little and the real members still
// get through (each attempt ends within the timeout).
//
// Per host, at most maxHandshakesPerHost prove at once and the others wait
// their turn (a follower opening 64 links at once waits a few
// milliseconds), up to maxPendingPerHost; beyond that, and beyond
// maxPending in all, a new connection is closed at once. A host's flood of
// idle connections so only delays that host.
const (
	handshakeTimeout     = 5 * time.Second
	maxHandshakes        = 256
	maxHandshakesPerHost = 16
	maxPendingPerHost    = 256
	maxPending           = 4096
	// firstByte: a connection that sends nothing this long is closed before
	// it takes a place in the queue.
	firstByte = time.Second
)

// hostQueue is one host's connections waiting for, or in, a handshake.
type hostQueue struct {
	pending int
	slots   chan struct{}
}

// MuxConfig is what the node-to-node listener needs.
type MuxConfig struct {
	Bind      string
	Advertise string // the address others dial; Bind when empty
	// CA gives the cluster's CA certificate (nil until this node knows it:
	// every handshake fails until then).
	CA func() *x509.Certificate
	// Cert gives this node's current certificate (renewed without a restart).
	Cert  func() *tls.Certificate
	Admit pki.Admit
}

// Mux is the node's one listener for the other nodes: TLS 1.3, a member's
// certificate required on both ends, and ALPN choosing Raft or the internal
// HTTP calls. A connection that does not complete the handshake (a plain
// TCP Raft client, another cluster's node, a removed node) is closed without
// a byte of answer.
type Mux struct {
	cfg    MuxConfig
	ln     net.Listener
	adv    net.Addr
	raftCh chan net.Conn
	httpCh chan net.Conn
	sem    chan struct{}
	closed chan struct{}
	once   sync.Once

	mu      sync.Mutex
	conns   map[*trackedConn]pki.Identity // open Raft connections, for Recheck
	hosts   map[string]*hostQueue         // connections proving or waiting, per host
	pending int                           // in all hosts
}

// ListenMux opens the node's Raft port.
func ListenMux(cfg MuxConfig) (*Mux, error) {
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("raft listen on %s: %w", cfg.Bind, err)
	}
	var adv net.Addr = ln.Addr()
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil || a.IP == nil || a.IP.IsUnspecified() || a.Port == 0 {
			ln.Close()
			return nil, fmt.Errorf("raft advertise address %q is not an address other nodes can dial; set --advertise-raft", cfg.Advertise)
		}
		adv = a
	} else if a := ln.Addr().(*net.TCPAddr); a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft listens on %q, which other nodes cannot dial; set --advertise-raft", cfg.Bind)
	}
	m := &Mux{cfg: cfg, ln: ln, adv: adv, raftCh: make(chan net.Conn), httpCh: make(chan net.Conn),
		sem: make(chan struct{}, maxHandshakes), closed: make(chan struct{}), conns: map[*trackedConn]pki.Identity{},
		hosts: map[string]*hostQueue{}}
	return m, nil
}

// Serve starts accepting: after Raft is open, since Admit reads its replica
// (connections wait in the kernel's backlog until then).
func (m *Mux) Serve() { go m.acceptLoop() }

func (m *Mux) pool() *x509.CertPool {
	p := x509.NewCertPool()
	if ca := m.cfg.CA(); ca != nil {
		p.AddCert(ca)
	}
	return p
}

func (m *Mux) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		host := hostOf(c.RemoteAddr())
		m.mu.Lock()
		q := m.hosts[host]
		if q == nil {
			q = &hostQueue{slots: make(chan struct{}, maxHandshakesPerHost)}
			m.hosts[host] = q
		}
		full := q.pending >= maxPendingPerHost || m.pending >= maxPending
		if !full {
			q.pending++
			m.pending++
		}
		m.mu.Unlock()
		if full {
			c.Close()
			continue
		}
		go m.handshake(c, host, q)
	}
}

func (m *Mux) done(host string, q *hostQueue) {
	m.mu.Lock()
	q.pending--
	m.pending--
	if q.pending == 0 {
		delete(m.hosts, host)
	}
	m.mu.Unlock()
}

// handshake waits for a slot of its host and one of the node's, then
// proves the peer, all within handshakeTimeout of being accepted.
func (m *Mux) handshake(c net.Conn, host string, q *hostQueue) {
	defer m.done(host, q)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-m.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	c.SetReadDeadline(time.Now().Add(firstByte))
	br := bufio.NewReaderSize(c, 4096)
	if _, err := br.Peek(1); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	c = &peekedConn{Conn: c, r: br}
	// A place of its host's, then one of the node's.
	for _, slots := range []chan struct{}{q.slots, m.sem} {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			c.Close()
			return
		case <-m.closed:
			c.Close()
			return
		}
	}
	cfg := pki.ServerConfig(m.pool(), m.cfg.Cert, m.cfg.Admit)
	cfg.NextProtos = []string{ProtoRaft, ProtoHTTP}
	tc := tls.Server(c, cfg)
	err := tc.HandshakeContext(ctx)
	if err != nil {
		c.Close()
		return
	}
	var ch chan net.Conn
	var out net.Conn = tc
	switch tc.ConnectionState().NegotiatedProtocol {
	case ProtoRaft:
		ch = m.raftCh
		if out, err = m.track(tc); err != nil {
			return
		}
	case ProtoHTTP:
		ch = m.httpCh // the HTTP server wants the *tls.Conn itself (r.TLS); each request is admitted again
	default:
		c.Close()
		return
	}
	select {
	case ch <- out:
	case <-m.closed:
		c.Close()
	}
}

// track remembers a Raft connection and its peer so Recheck can close it;
// the peer is admitted again once tracked (a removal applied during the
// handshake is not missed).
func (m *Mux) track(tc *tls.Conn) (net.Conn, error) {
	t := &trackedConn{Conn: tc, m: m}
	id, _ := pki.IdentityOf(tc.ConnectionState().PeerCertificates[0])
	m.mu.Lock()
	m.conns[t] = id
	m.mu.Unlock()
	if err := m.cfg.Admit(id); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Recheck closes every open Raft connection whose peer is no longer
// admitted (a node removed since it connected).
func (m *Mux) Recheck() {
	m.mu.Lock()
	var drop []*trackedConn
	for c, id := range m.conns {
		if m.cfg.Admit(id) != nil {
			drop = append(drop, c)
		}
	}
	m.mu.Unlock()
	for _, c := range drop {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	m    *Mux
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.m.mu.Lock()
		delete(t.m.conns, t)
		t.m.mu.Unlock()
	})
	return t.Conn.Close()
}

// Dial opens a link of proto to the node at addr; want is the node id the
// caller means ("" for any member).
func (m *Mux) Dial(ctx context.Context, addr, proto, want string) (*tls.Conn, error) {
	c, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg := pki.ClientConfig(m.pool(), m.cfg.Cert, want, m.cfg.Admit)
	cfg.NextProtos = []string{proto}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != proto {
		c.Close()
		return nil, fmt.Errorf("the node at %s does not speak %s", addr, proto)
	}
	return tc, nil
}

// Addr is the advertised address.
func (m *Mux) Addr() net.Addr { return m.adv }

// Close stops accepting; open connections are closed by their owners.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

// RaftLayer is the Mux as Raft's stream layer.
func (m *Mux) RaftLayer() raft.StreamLayer { return raftLayer{m} }

type raftLayer struct{ m *Mux }

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.closed:
		return nil, errors.New("raft listener closed")
	}
}

func (l raftLayer) Close() error   { return l.m.Close() }
func (l raftLayer) Addr() net.Addr { return l.m.adv }

func (l raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tc, err := l.m.Dial(ctx, string(addr), ProtoRaft, "")
	if err != nil {
		return nil, err
	}
	return l.m.track(tc)
}

// HTTPListener is the Mux as the listener of the internal HTTP server.
func (m *Mux) HTTPListener() net.Listener { return &httpListener{m: m, done: make(chan struct{})} }

type httpListener struct {
	m    *Mux
	done chan struct{}
	once sync.Once
}

func (l *httpListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.httpCh:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

// Close stops this listener only: the Mux owns the socket.
func (l *httpListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *httpListener) Addr() net.Addr { return l.m.adv }
