package node

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/pki"
	"lintel/replication"
)

// nodeTLS is this node's part of the cluster's mutual TLS, kept in
// DATA_DIR/tls (0700, files 0600): its private key, its certificate, the
// CA's certificate and the gossip key. The CA's key lives in the replicated
// state only (a member renews its own certificate and signs joiners' with it).
type nodeTLS struct {
	dir       string
	key       crypto.Signer
	cert      atomic.Pointer[tls.Certificate] // leaf, then the CA's
	leaf      atomic.Pointer[x509.Certificate]
	ca        atomic.Pointer[x509.Certificate]
	gossipKey []byte
	mu        sync.Mutex // one writer of the files at a time
	boot      atomic.Pointer[[]replication.JoinMember]
}

const (
	tlsJoinKeyFile = "join.key"     // the key a joining node asks a certificate for, kept across its retries
	tlsMembersFile = "members.json" // the members as the join answer listed them
	tlsKeyFile     = "node.key"
	tlsCertFile    = "node.crt"
	tlsCAFile      = "ca.crt"
	tlsGossipFile  = "gossip.key"
	joinTokenFile  = "join-token"
)

// loadTLS reads DATA_DIR/tls; ok is false when this node has no certificate yet.
func loadTLS(dataDir string) (*nodeTLS, bool, error) {
	t := &nodeTLS{dir: filepath.Join(dataDir, "tls")}
	keyPEM, err := os.ReadFile(filepath.Join(t.dir, tlsKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return t, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	bad := func(f string, err error) error {
		return fmt.Errorf("%s is damaged (%v): restore DATA_DIR/tls from a backup, or remove this node (DELETE /api/v1/cluster/nodes/ID) and join it afresh with a new data dir and --join-token", filepath.Join(t.dir, f), err)
	}
	if t.key, err = pki.ParseKey(keyPEM); err != nil {
		return nil, false, bad(tlsKeyFile, err)
	}
	certPEM, err := os.ReadFile(filepath.Join(t.dir, tlsCertFile))
	if err != nil {
		return nil, false, bad(tlsCertFile, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(t.dir, tlsCAFile))
	if err != nil {
		return nil, false, bad(tlsCAFile, err)
	}
	gk, err := os.ReadFile(filepath.Join(t.dir, tlsGossipFile))
	if err != nil {
		return nil, false, bad(tlsGossipFile, err)
	}
	if t.gossipKey, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(gk))); err != nil {
		return nil, false, bad(tlsGossipFile, err)
	}
	if err := t.set(certPEM, caPEM); err != nil {
		return nil, false, bad(tlsCertFile, err)
	}
	return t, true, nil
}

// set installs a certificate (PEM) for this node's key and the CA's.
func (t *nodeTLS) set(certPEM, caPEM []byte) error {
	leaf, err := pki.ParseCert(certPEM)
	if err != nil {
		return err
	}
	ca, err := pki.ParseCert(caPEM)
	if err != nil {
		return err
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("the certificate is not signed by the cluster's CA: %w", err)
	}
	want, err := pki.KeyFingerprint(t.key.Public())
	if err != nil {
		return err
	}
	if pki.Fingerprint(leaf) != want {
		return errors.New("the certificate is not for this node's key")
	}
	t.leaf.Store(leaf)
	t.ca.Store(ca)
	t.cert.Store(&tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: t.key, Leaf: leaf})
	return nil
}

// save writes the files: the key and gossip key first, the certificate
// last, each through a temporary file and a rename.
func (t *nodeTLS) save() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return err
	}
	keyPEM, err := pki.KeyPEM(t.key)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		b    []byte
	}{
		{tlsKeyFile, keyPEM},
		{tlsGossipFile, []byte(base64.StdEncoding.EncodeToString(t.gossipKey) + "\n")},
		{tlsCAFile, pki.CertPEM(t.ca.Load())},
		{tlsCertFile, pki.CertPEM(t.leaf.Load())},
	}
	for _, f := range files {
		if err := writeFileSync(filepath.Join(t.dir, f.name), f.b); err != nil {
			return err
		}
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// joinKey is the key a node not let in yet asks a certificate for: the
// same across restarts, so a join whose answer was lost is not a new key
// for the same node (which the cluster refuses).
func (t *nodeTLS) joinKey() (crypto.Signer, error) {
	p := filepath.Join(t.dir, tlsJoinKeyFile)
	if b, err := os.ReadFile(p); err == nil {
		return pki.ParseKey(b)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	b, err := pki.KeyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return nil, err
	}
	return key, writeFileSync(p, b)
}

func (t *nodeTLS) saveMembers(ms []replication.JoinMember) error {
	b, err := json.Marshal(ms)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return err
	}
	t.boot.Store(&ms)
	return writeFileSync(filepath.Join(t.dir, tlsMembersFile), b)
}

func (t *nodeTLS) bootMembers() []replication.JoinMember {
	if p := t.boot.Load(); p != nil {
		return *p
	}
	var ms []replication.JoinMember
	if b, err := os.ReadFile(filepath.Join(t.dir, tlsMembersFile)); err == nil {
		json.Unmarshal(b, &ms)
	}
	t.boot.Store(&ms)
	return ms
}

func (t *nodeTLS) gossip() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gossipKey
}

func (t *nodeTLS) setGossip(k []byte) {
	t.mu.Lock()
	t.gossipKey = k
	t.mu.Unlock()
}

func (t *nodeTLS) current() *tls.Certificate { return t.cert.Load() }
func (t *nodeTLS) caCert() *x509.Certificate { return t.ca.Load() }
func (t *nodeTLS) ready() bool               { return t.cert.Load() != nil }

// certHosts are the names and addresses a node's certificate carries: the
// hosts of its advertised addresses, and, where it listens on every
// address, the machine's own addresses and name.
func (c Config) certHosts(httpAddr, raftAddr, gossipAddr string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	every := false
	for _, a := range []string{httpAddr, raftAddr, gossipAddr} {
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
			every = true
			continue
		}
		add(h)
	}
	if every {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					add(ipn.IP.String())
				}
			}
		}
		if h, err := os.Hostname(); err == nil {
			add(h)
		}
	}
	add("localhost")
	return out
}

// certLifetime is a node certificate's lifetime; renewed when a third is left.
func (c Config) certLifetime() time.Duration {
	if c.CertLifetime > 0 {
		return c.CertLifetime
	}
	return pki.NodeLifetime
}

// bootstrapTLS makes a new cluster's CA, this node's key and certificate,
// the gossip key and the first join token.
func (n *Node) bootstrapTLS(hosts []string) (*command.ClusterTLS, *command.AddMember, error) {
	now := time.Now()
	ca, err := pki.NewCA("Lintel cluster CA ("+n.cfg.Building+")", now)
	if err != nil {
		return nil, nil, err
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.Issue(key.Public(), pki.Identity{NodeID: n.cfg.NodeID, Instance: n.id.Instance}, hosts, now, n.cfg.certLifetime())
	if err != nil {
		return nil, nil, err
	}
	gk := make([]byte, 32)
	rand.Read(gk)
	if n.cfg.GossipKey != "" {
		if gk, err = replication.ParseGossipKey(n.cfg.GossipKey); err != nil {
			return nil, nil, fmt.Errorf("--gossip-key: %w", err)
		}
	}
	tok, err := pki.NewJoinToken(ca)
	if err != nil {
		return nil, nil, err
	}
	caPEM, caKeyPEM, err := ca.PEM()
	if err != nil {
		return nil, nil, err
	}
	n.tls.key, n.tls.gossipKey = key, gk
	if err := n.tls.set(pki.CertPEM(cert), caPEM); err != nil {
		return nil, nil, err
	}
	if err := n.tls.save(); err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", n.tls.dir, err)
	}
	if err := writeFileSync(filepath.Join(n.cfg.DataDir, joinTokenFile), []byte(tok.String()+"\n")); err != nil {
		return nil, nil, err
	}
	kf, _ := pki.KeyFingerprint(key.Public())
	return &command.ClusterTLS{CACert: caPEM, CAKey: caKeyPEM, GossipKey: gk, JoinToken: tok.String()},
		&command.AddMember{NodeID: n.cfg.NodeID, Instance: n.id.Instance, Key: kf}, nil
}

// admit: a peer's certificate speaks for the cluster while its node, data
// dir and key are the ones recorded when it was let in.
//
// A replica can be behind the peer: a node let in a moment ago holds no
// state yet, and a building back from a week offline does not know a node
// that joined meanwhile (perhaps the leader now). Then, unless this replica
// knows the peer as removed, the members it does know vouch: the answer of
// any of them that knows the peer as a member admits it for a while. A node
// not caught up asks the members the join answer listed.
func (n *Node) admit(id pki.Identity) error {
	r := n.raftP.Load()
	if r == nil {
		return errors.New("this node is starting")
	}
	var err error
	caught, removed := true, false
	var vouchers []string
	r.Read(func(s *state.State) {
		caught = len(s.TLS.CACert) > 0
		err = s.AdmitPeer(id.NodeID, id.Instance, id.Key)
		removed = s.IsRemoved(id.NodeID, id.Instance)
		if err != nil && !removed {
			for _, m := range s.Members.All() {
				vouchers = append(vouchers, m.NodeID)
			}
		}
	})
	switch {
	case caught && err == nil:
		return nil
	case removed:
		return err
	}
	if !caught {
		err = fmt.Errorf("node %s is not among the members this node was told of when it was let in", id.NodeID)
		vouchers = nil
		for _, m := range n.tls.bootMembers() {
			if m.NodeID == id.NodeID && m.Instance == id.Instance && m.Key == id.Key {
				return nil
			}
			vouchers = append(vouchers, m.NodeID)
		}
	}
	if n.vouch(id, vouchers) {
		return nil
	}
	return err
}

// vouchFor: how long another member's word admits a node this replica does
// not know yet, and how long a refusal is remembered (a flood of unknown
// certificates costs one round of questions each).
const (
	vouchFor   = 5 * time.Minute
	unvouchFor = 10 * time.Second
)

type vouch struct {
	ok    bool
	until time.Time
}

// vouch asks up to three of the given members whether id is a member.
func (n *Node) vouch(id pki.Identity, members []string) bool {
	key := id.NodeID + " " + id.Instance + " " + id.Key
	if v, ok := n.vouched.Load(key); ok && time.Now().Before(v.(vouch).until) {
		return v.(vouch).ok
	}
	if !n.serving.Load() { // n.fwd is set before serving
		return false
	}
	asked := 0
	ok := false
	for _, m := range members {
		if m == n.cfg.NodeID || m == id.NodeID || asked == 3 {
			continue
		}
		asked++
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		var ans memberAnswer
		err := n.fwd.CallNode(ctx, m, replication.PathMember, memberQuestion{NodeID: id.NodeID}, &ans)
		cancel()
		if err == nil && ans.Member != nil && !ans.Removed && ans.Member.Instance == id.Instance && ans.Member.Key == id.Key {
			ok = true
			break
		}
	}
	until := time.Now().Add(unvouchFor)
	if ok {
		until = time.Now().Add(vouchFor)
		n.log.Info("admitted a node this replica does not know yet, on another member's word", "node", id.NodeID)
	}
	n.vouched.Store(key, vouch{ok: ok, until: until})
	return ok
}

type memberQuestion struct {
	NodeID string `json:"node_id"`
}

type memberAnswer struct {
	Member  *replication.JoinMember `json:"member,omitempty"`
	Removed bool                    `json:"removed,omitempty"`
}

// memberHandler answers another member's question about a node.
func (n *Node) memberHandler() http.Handler {
	return n.fwd.Internal(func(_ context.Context, body []byte) (any, error) {
		var q memberQuestion
		if err := json.Unmarshal(body, &q); err != nil {
			return nil, err
		}
		var a memberAnswer
		n.raft.Read(func(s *state.State) {
			if m, ok := s.Members.Get(q.NodeID); ok {
				a.Member = &replication.JoinMember{NodeID: m.NodeID, Instance: m.Instance, Key: m.Key}
				a.Removed = s.IsRemoved(m.NodeID, m.Instance)
			}
		})
		return a, nil
	})
}

// admitJoin answers a join exchange the gossip port handed over.
func (n *Node) admitJoin(ctx context.Context, req replication.JoinRequest, pub crypto.PublicKey, ekm []byte) replication.JoinAnswer {
	refuse := func(code, msg string, final bool) replication.JoinAnswer {
		return replication.JoinAnswer{Error: &replication.JoinError{Code: code, Message: msg, Final: final}}
	}
	if !n.serving.Load() {
		return refuse("not_ready", "node "+n.cfg.NodeID+" is starting; trying again", false)
	}
	var ct command.ClusterTLS
	read := func() (pki.JoinToken, error) {
		n.raft.Read(func(s *state.State) { ct = s.TLS })
		return pki.ParseJoinToken(ct.JoinToken)
	}
	tok, err := read()
	if err != nil {
		return refuse("not_ready", "node "+n.cfg.NodeID+" has not caught up with the cluster yet; trying again", false)
	}
	if !pki.JoinProofMatches(req.Proof, pki.SecretHash(tok.Secret), ekm) {
		// This replica may lag behind a rotation: only a current one refuses for good.
		if err := (service{n}).Strong(ctx); err != nil {
			return refuse("no_quorum", "node "+n.cfg.NodeID+" cannot check the token with the cluster now; trying again", false)
		}
		if tok, err = read(); err != nil || !pki.JoinProofMatches(req.Proof, pki.SecretHash(tok.Secret), ekm) {
			return refuse("join_refused", "the join token is not this cluster's current one: read it on a member (GET /api/v1/cluster/join-token, or DATA_DIR/join-token on the first node)", true)
		}
	}
	if err := checkJoinRequest(req); err != nil {
		return refuse("invalid_join", err.Error(), true)
	}
	kf, err := pki.KeyFingerprint(pub)
	if err != nil {
		return refuse("invalid_join", err.Error(), true)
	}
	// Recorded before the certificate is handed out: every member admits it
	// from the moment it has one.
	res, err := service{n}.Write(ctx, command.Command{
		Header: command.Header{RequestID: "join-" + req.NodeID + "-" + req.Instance + "-" + kf[7:23] + "-" + pki.SecretHash(tok.Secret)[:16], Actor: "system", At: time.Now().UTC(), Node: n.cfg.NodeID},
		Body:   &command.AddMember{NodeID: req.NodeID, Instance: req.Instance, Key: kf, TokenHash: pki.SecretHash(tok.Secret)},
	})
	if err != nil {
		return refuse("no_quorum", "the cluster cannot commit now ("+err.Error()+"); trying again", false)
	}
	if res.Err != nil {
		return refuse(res.Err.Code, res.Err.Message, true)
	}
	ca, err := pki.ParseCA(ct.CACert, ct.CAKey)
	if err != nil {
		return refuse("not_ready", "the cluster's CA cannot be read on node "+n.cfg.NodeID, false)
	}
	cert, err := ca.Issue(pub, pki.Identity{NodeID: req.NodeID, Instance: req.Instance}, req.Hosts, time.Now(), n.cfg.certLifetime())
	if err != nil {
		return refuse("invalid_join", err.Error(), true)
	}
	n.log.Info("let a node in with the join token", "node", req.NodeID)
	var members []replication.JoinMember
	n.raft.Read(func(s *state.State) {
		for _, m := range s.Members.All() {
			members = append(members, replication.JoinMember{NodeID: m.NodeID, Instance: m.Instance, Key: m.Key})
		}
	})
	return replication.JoinAnswer{Cert: pki.CertPEM(cert), CA: ct.CACert, GossipKey: ct.GossipKey, Members: members}
}

var (
	nodeIDPattern   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	instancePattern = regexp.MustCompile(`^[0-9a-f]{16}$`)
	hostPattern     = regexp.MustCompile(`^[A-Za-z0-9.:_-]{1,253}$`)
)

func checkJoinRequest(r replication.JoinRequest) error {
	switch {
	case !nodeIDPattern.MatchString(r.NodeID):
		return errors.New("the joining node's id must be 1 to 128 letters, digits, dots, dashes or underscores")
	case !instancePattern.MatchString(r.Instance):
		return errors.New("the joining node's data dir instance is not 16 hex digits")
	case len(r.Hosts) > 64:
		return errors.New("the joining node names more than 64 hosts")
	}
	for _, h := range r.Hosts {
		if !hostPattern.MatchString(h) {
			return fmt.Errorf("host %q is not a host name or address", h)
		}
	}
	return nil
}

// joinCluster runs on a node started with --join and no certificate: it
// asks the seeds, in turn, to let it in with the join token, and retries
// while none answers. A final refusal (a wrong token, another cluster, a
// removed data dir) stops the node with its reason.
func (n *Node) joinCluster(tok pki.JoinToken, hosts []string) {
	defer n.wg.Done()
	key, err := n.tls.joinKey()
	if err != nil {
		n.fail(err)
		return
	}
	stopCtx, stopCancel := context.WithCancel(context.Background())
	defer stopCancel()
	go func() {
		select {
		case <-n.stop:
			stopCancel()
		case <-stopCtx.Done():
		}
	}()
	req := replication.JoinRequest{NodeID: n.cfg.NodeID, Instance: n.id.Instance, Hosts: hosts}
	wait := 200 * time.Millisecond
	lastSaid := time.Now()
	for {
		for _, seed := range n.cfg.Join {
			ctx, cancel := context.WithTimeout(stopCtx, 20*time.Second)
			ans, err := replication.RequestJoin(ctx, seed, tok, req, key)
			cancel()
			if stopCtx.Err() != nil {
				return
			}
			var je *replication.JoinError
			switch {
			case err == nil:
				if err := n.installJoin(key, tok, ans); err != nil {
					n.fail(fmt.Errorf("the certificate %s handed out cannot be used: %w", seed, err))
					return
				}
				n.log.Info("let into the cluster", "by", seed)
				return
			case errors.As(err, &je) && je.Final:
				n.fail(fmt.Errorf("join refused by %s: %s", seed, je.Message))
				return
			default:
				n.log.Debug("join: no answer yet", "seed", seed, "err", err)
				if time.Since(lastSaid) > 30*time.Second {
					n.log.Warn("still waiting to be let into the cluster", "seeds", n.cfg.Join, "last_error", err)
					lastSaid = time.Now()
				}
			}
		}
		select {
		case <-n.stop:
			return
		case <-time.After(wait):
		}
		if wait < 5*time.Second {
			wait *= 2
		}
	}
}

func (n *Node) installJoin(key crypto.Signer, tok pki.JoinToken, ans replication.JoinAnswer) error {
	if len(ans.GossipKey) != 16 && len(ans.GossipKey) != 24 && len(ans.GossipKey) != 32 {
		return errors.New("no gossip key")
	}
	if ca, err := pki.ParseCert(ans.CA); err != nil || pki.Fingerprint(ca) != tok.CAFingerprint {
		return errors.New("the CA handed over is not the one the join token names")
	}
	if err := n.tls.saveMembers(ans.Members); err != nil {
		return err
	}
	n.tls.key, n.tls.gossipKey = key, ans.GossipKey
	if err := n.tls.set(ans.Cert, ans.CA); err != nil {
		return err
	}
	if id, ok := pki.IdentityOf(n.tls.leaf.Load()); !ok || id.NodeID != n.cfg.NodeID || id.Instance != n.id.Instance {
		return errors.New("the certificate names another node")
	}
	if err := n.tls.save(); err != nil {
		return err
	}
	os.Remove(filepath.Join(n.tls.dir, tlsJoinKeyFile))
	if err := n.members.SetKey(ans.GossipKey); err != nil {
		return err
	}
	select {
	case n.membersChanged <- struct{}{}:
	default:
	}
	return nil
}

// renewDue renews the certificate now if a third of its life or less is
// left (a node back after a long time off must not wait for the loop).
func (n *Node) renewDue() {
	leaf := n.tls.leaf.Load()
	if leaf == nil || time.Until(leaf.NotAfter) > n.cfg.certLifetime()/3 {
		return
	}
	if err := n.renew(leaf); err != nil {
		n.log.Warn("certificate renewal failed; trying again", "err", err, "expires", leaf.NotAfter)
	}
}

// renewLoop renews this node's certificate, with the same key, when a third
// of its lifetime is left, signing it with the CA key in the replica.
func (n *Node) renewLoop() {
	defer n.wg.Done()
	life := n.cfg.certLifetime()
	every := min(life/20, time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.renewDue()
	}
}

func (n *Node) renew(old *x509.Certificate) error {
	var ct command.ClusterTLS
	n.raft.Read(func(s *state.State) { ct = s.TLS })
	ca, err := pki.ParseCA(ct.CACert, ct.CAKey)
	if err != nil {
		return fmt.Errorf("this replica holds no CA yet: %w", err)
	}
	hosts := append(append([]string{}, old.DNSNames...), ipStrings(old.IPAddresses)...)
	cert, err := ca.Issue(n.tls.key.Public(), pki.Identity{NodeID: n.cfg.NodeID, Instance: n.id.Instance}, hosts, time.Now(), n.cfg.certLifetime())
	if err != nil {
		return err
	}
	if err := n.tls.set(pki.CertPEM(cert), ct.CACert); err != nil {
		return err
	}
	if err := n.tls.save(); err != nil {
		return err
	}
	n.log.Info("renewed this node's certificate", "expires", cert.NotAfter)
	return nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// fail stops a node that cannot go on (a refused join): the reason is
// kept for the process to print, and Failed is closed.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.failErr = err
		n.log.Error("stopping", "reason", err.Error())
		close(n.failed)
	})
}

// Failed is closed when the node stopped itself; FailReason says why.
func (n *Node) Failed() <-chan struct{} { return n.failed }

// FailReason is the one-line reason the node stopped itself.
func (n *Node) FailReason() error { return n.failErr }

// JoinToken is the cluster's current join token as this replica knows it.
func (n *Node) JoinToken() string {
	var t string
	n.raft.Read(func(s *state.State) { t = s.TLS.JoinToken })
	return t
}

// trustLoop acts on changes of who is let in: a removed node's open links
// close at once, and the join token file follows a rotation.
func (n *Node) trustLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-n.trustChanged:
			n.vouched.Clear()
			n.mux.Recheck()
			n.keepJoinTokenFile()
			n.keepGossipKey()
		}
	}
}

// gossipKeyGrace: after a rotation the old gossip key is still heard this
// long, while the other nodes apply it.
const gossipKeyGrace = 30 * time.Second

// keepGossipKey follows a rotation of the gossip key (a node was removed).
func (n *Node) keepGossipKey() {
	var k []byte
	n.raft.Read(func(s *state.State) { k = s.TLS.GossipKey })
	if len(k) == 0 || !n.tls.ready() || bytes.Equal(k, n.tls.gossip()) {
		return
	}
	if err := n.members.RotateKey(k, gossipKeyGrace); err != nil {
		n.log.Warn("could not rotate the gossip key", "err", err)
		return
	}
	n.tls.setGossip(k)
	if err := n.tls.save(); err != nil {
		n.log.Warn("could not save the new gossip key", "err", err)
	}
	n.log.Info("the gossip key was rotated")
}

// keepJoinTokenFile rewrites DATA_DIR/join-token, on the node that has one,
// when an administrator rotates the token.
func (n *Node) keepJoinTokenFile() {
	p := filepath.Join(n.cfg.DataDir, joinTokenFile)
	old, err := os.ReadFile(p)
	if err != nil {
		return
	}
	tok := n.JoinToken()
	if tok != "" && strings.TrimSpace(string(old)) != tok {
		if err := writeFileSync(p, []byte(tok+"\n")); err != nil {
			n.log.Warn("could not rewrite the join token file", "err", err)
		}
	}
}
