package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"

	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lintel/consensus"
	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/pki"
	"lintel/reader"
	"lintel/reader/ble"
	"lintel/replication"
	"lintel/ui/api"
	"lintel/ui/console"
	"lintel/voucherkey"
)

// Node is one running building node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	id       identity
	raft     *consensus.Raft
	members  *replication.Membership
	fwd      *replication.Forwarder
	tls      *nodeTLS
	mux      *replication.Mux // the Raft port: Raft and the internal calls over mutual TLS
	internal *http.Server     // the internal calls, on mux
	failed   chan struct{}
	failErr  error
	failOnce sync.Once
	raftP    atomic.Pointer[consensus.Raft] // n.raft once Open returned, for the TLS checks
	serving  atomic.Bool                    // the forwarder is set: joins may be answered
	vouched  sync.Map                       // node id, instance, key → vouch (admit)
	// verifyFailed: members whose gossiped address did not prove them (the leader loop's only)
	verifyFailed map[string]time.Time
	// trustChanged: members, removals or the join token changed (trustLoop).
	trustChanged chan struct{}
	// hub carries the state's changes to the console's live pages.
	hub      *console.Hub
	api      *api.API // set by routes, before the HTTP server starts
	metrics  *metrics
	http     *http.Server
	httpLn   net.Listener
	httpAddr string      // advertised
	httpTLS  *tls.Config // nil: plain HTTP (loopback only)
	caPinned bool        // HTTPS with the cluster CA's certificate: links carry its fingerprint

	// initAdmin is set on the node that bootstraps a new cluster: the leader
	// loop applies it as the Init command.
	initAdmin   *command.Init
	demoPass    string              // the first operator's password, for the demo's own logins
	initIssuers []ed25519.PublicKey // --voucher-issuer keys, trusted at bootstrap
	initTLS     *command.ClusterTLS
	initMember  *command.AddMember

	link *reader.Link
	ble  *ble.Transport
	// readersChanged wakes the BLE loop when the readers table changes.
	readersChanged chan struct{}
	ctrl           *reader.Controller
	events         *reader.EventLog
	archive        *archive // history lines that left the replicated state
	doors          *reader.RelayDoors
	started        time.Time
	lastQuorum     atomic.Int64 // unix nanos of the last moment the node had a quorum
	lastCurrent    atomic.Int64 // unix nanos of the last moment the node was current
	vkey           atomic.Pointer[ed25519.PrivateKey]

	mail           *mailer // delivers the outbox while this node leads
	reconcile      chan struct{}
	membersChanged chan struct{}
	stop           chan struct{}
	wg             sync.WaitGroup
	closeOnce      sync.Once
}

// Start opens every part of the node and starts serving. Stop undoes it.
func Start(cfg Config) (*Node, error) {
	if cfg.LogOutput == nil {
		cfg.LogOutput = os.Stderr
	}
	n := &Node{cfg: cfg, reconcile: make(chan struct{}, 1), membersChanged: make(chan struct{}, 1), stop: make(chan struct{}),
		readersChanged: make(chan struct{}, 1), failed: make(chan struct{}), trustChanged: make(chan struct{}, 1), hub: console.NewHub()}
	n.log = slog.New(slog.NewTextHandler(cfg.LogOutput, &slog.HandlerOptions{Level: parseLevel(cfg.LogLevel)})).With("node", cfg.NodeID)
	var err error
	if n.mail, err = newMailer(n); err != nil { // before Raft: observe pokes it while the log replays
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// The log holds the cluster secret and password hashes: only this user may read it.
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	id, err := loadIdentity(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	hasState, err := consensus.HasState(cfg.DataDir)
	if err != nil {
		return nil, err // one line naming the file and what to do
	}
	// A member's data dir without Raft state must never bootstrap a new
	// cluster (a second cluster, a new admin password).
	if err := checkLostState(cfg.DataDir, id, hasState, len(cfg.Join) > 0); err != nil {
		return nil, err
	}
	if hasState {
		if id, err = withMember(cfg.DataDir, id); err != nil {
			return nil, err
		}
	}
	n.id = id
	tlsm, haveTLS, err := loadTLS(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n.tls = tlsm
	bootstrap := !hasState && len(cfg.Join) == 0
	var joinTok pki.JoinToken
	switch {
	case haveTLS:
	case bootstrap:
	case !hasState:
		if cfg.JoinToken == "" {
			return nil, errors.New("this node is not a member of a cluster yet: start it with --join-token TOKEN (read it on a member: GET /api/v1/cluster/join-token, or the first node's DATA_DIR/join-token)")
		}
		if joinTok, err = pki.ParseJoinToken(cfg.JoinToken); err != nil {
			return nil, fmt.Errorf("--join-token: %w", err)
		}
	default:
		return nil, fmt.Errorf("%s holds no certificate: restore it from a backup of this data dir, or remove this node (DELETE /api/v1/cluster/nodes/%s) and start it with a new data dir and --join-token (a data dir made by a build before mutual TLS cannot be upgraded in place: see the README)", filepath.Join(cfg.DataDir, "tls"), cfg.NodeID)
	}

	// HTTP first: its advertised address goes into the gossip metadata.
	n.httpLn, err = net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", cfg.HTTP, err)
	}
	n.httpAddr = cfg.AdvertiseHTTP
	if n.httpAddr == "" {
		n.httpAddr = n.httpLn.Addr().String()
	}
	if err := n.httpsSetup(); err != nil {
		n.httpLn.Close()
		return nil, err
	}
	n.mux, err = replication.ListenMux(replication.MuxConfig{Bind: cfg.Raft, Advertise: cfg.AdvertiseRaft,
		CA: n.tls.caCert, Cert: n.tls.current, Admit: n.admit})
	if err != nil {
		n.httpLn.Close()
		return nil, err
	}
	hosts := cfg.certHosts(n.httpAddr, n.mux.Addr().String(), cfg.advertise(cfg.Gossip, cfg.AdvertiseGossip))
	if bootstrap {
		if n.initTLS, n.initMember, err = n.bootstrapTLS(hosts); err != nil {
			n.httpLn.Close()
			n.mux.Close()
			return nil, err
		}
	}

	n.metrics = newMetrics(n)
	// Before Raft: the log replayed at open may trim history lines.
	if n.archive, err = openArchive(cfg.DataDir); err != nil {
		n.httpLn.Close()
		n.mux.Close()
		return nil, err
	}
	n.raft, err = consensus.Open(consensus.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, Stream: n.mux.RaftLayer(),
		LogLevel: cfg.LogLevel, LogOutput: cfg.LogOutput, Observe: n.observe, Archive: n.archive.put,
		ApplyLatency: n.metrics.applySeconds,
	})
	if err != nil {
		n.httpLn.Close()
		n.mux.Close()
		n.archive.close()
		return nil, err
	}
	n.raftP.Store(n.raft)
	n.renewDue()  // before anyone sees the certificate: a node back after long may hold an expired one
	n.mux.Serve() // admit reads the replica: only now
	gossipKey := n.tls.gossipKey
	if gossipKey == nil {
		// Not let in yet: a key nobody shares, until the join hands over the cluster's.
		gossipKey = make([]byte, 32)
		rand.Read(gossipKey)
	}
	join := &replication.JoinServer{Cert: n.tls.current, Admit: n.admitJoin, Log: n.log.Info}
	n.members, err = replication.StartMembership(replication.MembershipConfig{
		Meta: replication.Meta{
			ID: cfg.NodeID, Instance: id.Instance, Building: cfg.Building, Raft: n.raft.LocalAddr(),
			HTTP: n.httpAddr, Readers: cfg.Readers, Gossip: cfg.advertise(cfg.Gossip, cfg.AdvertiseGossip), Version: cfg.Version,
			Commands: uint8(command.Last),
		},
		Bind: cfg.Gossip, Advertise: cfg.AdvertiseGossip, Key: gossipKey, OnJoinConn: join.Serve,
		LogOutput: cfg.LogOutput, Debug: cfg.LogLevel == "debug", OnChange: n.membersChange,
	})
	if err != nil {
		n.raft.Close()
		n.httpLn.Close()
		return nil, err
	}
	n.fwd = &replication.Forwarder{
		NodeID: cfg.NodeID, Local: n.raft, Members: n.members, Admit: n.admit,
		Client:    replication.NewInternalClient(n.mux, n.members, api.WriteTimeout),
		OnForward: n.metrics.forwarded.Inc,
	}
	n.serving.Store(true)
	n.internal = &http.Server{Handler: n.internalRoutes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := n.internal.Serve(n.mux.HTTPListener()); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("internal server stopped", "err", err)
		}
	}()
	go n.renewLoop()
	n.wg.Add(1)
	go n.trustLoop()
	if !hasState && !bootstrap && !haveTLS {
		n.wg.Add(1)
		go n.joinCluster(joinTok, hosts)
	}

	if !hasState && len(cfg.Join) == 0 {
		if err := n.prepareInit(); err != nil {
			n.Stop()
			return nil, err
		}
		if err := n.raft.Bootstrap(); err != nil {
			n.Stop()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		if n.id, err = withMember(cfg.DataDir, n.id); err != nil {
			n.Stop()
			return nil, err
		}
		n.log.Info("bootstrapped a new single-node cluster", "data_dir", cfg.DataDir)
	} else if !hasState {
		n.wg.Add(1)
		go n.watchMember(n.id)
	}

	// The reader link decides from the local replica, so it starts once Raft
	// is open; it is stopped first so no exchange outlives the parts it uses.
	if n.events, err = reader.OpenEventLog(cfg.DataDir); err != nil {
		n.Stop()
		return nil, err
	}
	var door reader.Door = reader.LogDoor{Log: n.log}
	if len(cfg.Doors) > 0 {
		if n.doors, err = reader.NewRelayDoors(cfg.Doors, door, n.log); err != nil {
			n.Stop()
			return nil, err
		}
		door = n.doors
	}
	n.started = time.Now()
	n.lastQuorum.Store(n.started.UnixNano())
	// A node restarting counts its offline grace from when it was last
	// current, not from its start.
	if asOf := n.raft.CurrentAsOf(); !asOf.IsZero() && asOf.Before(n.started) {
		n.lastCurrent.Store(asOf.UnixNano())
	} else {
		n.lastCurrent.Store(n.started.UnixNano())
	}
	n.ctrl, err = reader.NewController(reader.Config{
		NodeID: cfg.NodeID, View: n.raft, Commit: n.commit, NewID: api.NewID, Quorum: n.quorum, Current: n.current,
		Events: n.events, Door: door, Log: n.log, VerdictKey: n.verdictKey,
	})
	if err != nil {
		n.Stop()
		return nil, err
	}
	n.link, err = reader.Listen(cfg.Readers, reader.LinkConfig{Controller: n.ctrl, Log: n.log})
	if err != nil {
		n.Stop()
		return nil, err
	}
	n.ble = ble.New(n.ctrl, ble.Open, n.log)
	n.http = &http.Server{Handler: n.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	n.wg.Add(5)
	go n.watchQuorum()
	go n.bleLoop()
	go func() {
		defer n.wg.Done()
		ln := n.httpLn
		if n.httpTLS != nil {
			ln = tls.NewListener(ln, n.httpTLS)
		}
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	go n.joinLoop()
	go n.leaderLoop()
	n.log.Info("node started", "http", n.httpAddr, "raft", n.raft.LocalAddr(), "gossip", n.members.Addr(), "building", cfg.Building)
	return n, nil
}

// prepareInit makes the Init command the bootstrap leader will apply: the
// first account, the Administrator profile and operator, the cluster secret.
func (n *Node) prepareInit() error {
	pw := n.cfg.AdminPassword
	generated := pw == ""
	if generated {
		var b [12]byte
		rand.Read(b[:])
		pw = base64.RawURLEncoding.EncodeToString(b[:])
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if n.cfg.Demo {
		n.demoPass = pw
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	// SPEC 4.2: an end customer named after the first building; the demo
	// shows the integrator's side too, so its account is a reseller.
	name, kind := n.cfg.Building, state.AccountEndCustomer
	if n.cfg.Demo {
		name, kind = "Demo Integrator", state.AccountReseller
	}
	n.initAdmin = &command.Init{
		AccountID: api.NewID(), AccountName: name, AccountKind: kind,
		ProfileID: api.NewID(), OperatorID: api.NewID(), Email: n.cfg.AdminEmail,
		PasswordHash: string(hash), ClusterSecret: secret, TLS: n.initTLS, Member: n.initMember,
	}
	for _, f := range n.cfg.VoucherIssuers {
		pub, err := voucherkey.LoadPublicKey(f)
		if err != nil {
			return fmt.Errorf("--voucher-issuer %s: %w", f, err)
		}
		n.initIssuers = append(n.initIssuers, pub)
	}
	if generated {
		// Printed once; only the hash is kept.
		fmt.Fprintf(n.cfg.LogOutput, "\n  First operator: %s\n  Password (shown once): %s\n\n", n.cfg.AdminEmail, pw)
	}
	if n.initTLS != nil {
		fmt.Fprintf(n.cfg.LogOutput, "  Join token for new buildings (also in %s):\n  %s\n\n", filepath.Join(n.cfg.DataDir, joinTokenFile), n.initTLS.JoinToken)
	}
	return nil
}

// poke asks the leader loop to reconcile soon; it never blocks.
func (n *Node) poke() {
	select {
	case n.reconcile <- struct{}{}:
	default:
	}
}

// membersChange is gossip's callback: it must not block.
func (n *Node) membersChange() {
	n.poke()
	select {
	case n.membersChanged <- struct{}{}:
	default:
	}
}

// observe receives the state's change events after each applied batch.
func (n *Node) observe(changes []state.Change) {
	n.hub.Publish(changes)
	for _, c := range changes {
		if c.Table == "removed_nodes" && c.ID == n.cfg.NodeID {
			go n.removedSelf()
		}
		if c.Table == "removed_nodes" || c.Table == "*" {
			n.poke()
		}
		if c.Table == "members" || c.Table == "removed_nodes" || c.Table == "tls" || c.Table == "*" {
			select {
			case n.trustChanged <- struct{}{}:
			default:
			}
		}
		if c.Table == "outbox" || c.Table == "*" {
			n.mail.poke()
		}
		if c.Table == "readers" || c.Table == "*" {
			select {
			case n.readersChanged <- struct{}{}:
			default:
			}
		}
	}
}

// History yields an account's history in commit order: the lines this
// node archived, then those the state keeps.
func (n *Node) History(account string, fn func(state.HistoryEntry) bool) error {
	st := n.raft.Registry()
	more := true
	err := n.archive.lines(account, st.History.Oldest(account), func(e state.HistoryEntry) bool {
		more = fn(e)
		return more
	})
	if err != nil || !more {
		return err
	}
	for e := range st.History.Account(account) {
		if !fn(e) {
			break
		}
	}
	return nil
}

// removedSelf leaves gossip when an administrator removed this data dir.
func (n *Node) removedSelf() {
	var removed bool
	n.raft.Read(func(s *state.State) { removed = s.IsRemoved(n.cfg.NodeID, n.id.Instance) })
	if removed {
		n.log.Warn("an administrator removed this node from the cluster; it leaves gossip and serves only its local replica")
		n.members.Leave(time.Second)
	}
}

// joinLoop keeps this node in gossip: while it sees no other live node it
// tries --join and the peers it remembers, with backoff; whenever the members
// change it saves them to peers.json, so a restart finds the cluster again.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	wait := 200 * time.Millisecond
	var saved []string
	for {
		peers, others := n.peerAddrs()
		if len(peers) > 0 && fmt.Sprint(peers) != fmt.Sprint(saved) {
			if err := savePeers(n.cfg.DataDir, peers); err != nil {
				n.log.Warn("could not save peers", "err", err)
			} else {
				saved = peers
			}
		}
		if others == 0 && n.tls.ready() {
			seeds := append(append([]string(nil), n.cfg.Join...), loadPeers(n.cfg.DataDir)...)
			if len(seeds) > 0 {
				if k, err := n.members.Join(seeds); err == nil && k > 0 {
					n.log.Info("joined gossip", "contacted", k)
					wait = 200 * time.Millisecond
				} else {
					n.log.Debug("gossip join failed; retrying", "seeds", seeds, "err", err)
					if wait < 5*time.Second {
						wait *= 2
					}
				}
			}
		}
		select {
		case <-n.stop:
			return
		case <-n.membersChanged:
		case <-time.After(wait):
		}
	}
}

// peerAddrs lists the gossip addresses of the other nodes, and how many are alive.
func (n *Node) peerAddrs() (peers []string, alive int) {
	for _, m := range n.members.Members() {
		if m.ID == n.cfg.NodeID || m.Gossip == "" {
			continue
		}
		peers = append(peers, m.Gossip)
		if m.State == "alive" || m.State == "suspect" {
			alive++
		}
	}
	sort.Strings(peers)
	return peers, alive
}

// Stop shuts the node down: leadership handed over, gossip left, HTTP
// drained, Raft closed. Acknowledged writes are already on disk.
func (n *Node) Stop() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.stop)
		n.hub.Close()
		if n.link != nil {
			n.link.Close()
		}
		if n.ble != nil {
			n.ble.Close()
		}
		if n.ctrl != nil {
			n.ctrl.Close()
		}
		if n.doors != nil {
			n.doors.Close() // fail-secure: every door locked
		}
		if n.raft != nil && n.raft.IsLeader() && n.hasOtherVoters() {
			done := make(chan error, 1)
			go func() { done <- n.raft.TransferLeadership() }()
			select {
			case e := <-done:
				if e != nil {
					n.log.Warn("leadership transfer failed", "err", e)
				}
			case <-time.After(2 * time.Second):
				n.log.Warn("leadership transfer timed out")
			}
		}
		if n.members != nil {
			n.members.Leave(500 * time.Millisecond)
		}
		if n.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			n.http.Shutdown(ctx)
			cancel()
		} else if n.httpLn != nil {
			n.httpLn.Close()
		}
		if n.internal != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			n.internal.Shutdown(ctx)
			cancel()
		}
		if n.raft != nil {
			err = n.raft.Close()
		}
		if n.mux != nil {
			n.mux.Close()
		}
		n.wg.Wait()
		if n.events != nil {
			n.events.Close()
		}
		if n.archive != nil {
			n.archive.close()
		}
	})
	return err
}

func (n *Node) hasOtherVoters() bool {
	servers, err := n.raft.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.Voter && s.ID != n.cfg.NodeID {
			return true
		}
	}
	return false
}

// verdictKey is the cluster's verdict key, derived once the cluster secret
// is known (it never changes).
func (n *Node) verdictKey() ed25519.PrivateKey {
	if k := n.vkey.Load(); k != nil {
		return *k
	}
	var k ed25519.PrivateKey
	n.raft.Read(func(s *state.State) { k = s.VerdictKey() })
	if k != nil {
		n.vkey.Store(&k)
	}
	return k
}

// commit commits a command the reader controller made through the leader;
// a rejection comes back as the *state.Rejection.
func (n *Node) commit(ctx context.Context, c command.Command) error {
	res, err := service{n}.Write(ctx, c)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// quorumContact: a follower that heard from its leader this recently is
// part of a working quorum (the leader sends heartbeats far more often).
const quorumContact = time.Second

// quorum tells whether this node can commit now and, if not, since when
// it could not. A leader keeps its quorum by its lease (it steps down when
// it loses contact with a majority).
func (n *Node) quorum() (bool, time.Time) {
	now := time.Now()
	_, leader := n.raft.Leader()
	if n.raft.IsLeader() || (leader != "" && now.Sub(n.raft.LastContact()) < quorumContact) {
		n.lastQuorum.Store(now.UnixNano())
		return true, time.Time{}
	}
	return false, time.Unix(0, n.lastQuorum.Load())
}

// current tells whether this node's replica holds what the cluster
// committed: it has a quorum, it applies, and it has applied up to the
// leader's commit index as known within the last second. Hearing heartbeats
// is not enough: a node whose disk is full hears them and applies nothing.
func (n *Node) current() (bool, time.Time) {
	now := time.Now()
	ok, _ := n.quorum()
	if ok && n.raft.Halted() == nil && now.Sub(n.raft.CurrentAsOf()) < quorumContact {
		n.lastCurrent.Store(now.UnixNano())
		return true, time.Time{}
	}
	last := time.Unix(0, n.lastCurrent.Load())
	if asOf := n.raft.CurrentAsOf(); asOf.After(last) {
		last = asOf // current until then, whatever the sampling saw
	}
	return false, last
}

// watchQuorum samples the quorum so that the time it was lost is known
// even when no door asked in between.
func (n *Node) watchQuorum() {
	defer n.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var lastHaltLog time.Time
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.current()
			if h := n.raft.Halted(); h != nil && n.raft.IsLeader() && time.Since(lastHaltLog) > 5*time.Second {
				// A leader that cannot apply cannot answer writes: hand over.
				lastHaltLog = time.Now()
				n.log.Error("this node stopped applying the log; handing leadership over", "index", h.Index, "type", h.Type, "reason", h.Reason)
				go n.raft.TransferLeadership()
			}
		}
	}
}

// ReadersAddr is the reader link's listen address.
func (n *Node) ReadersAddr() string { return n.link.Addr() }

// URL is where people and phones reach this node's console and API.
func (n *Node) URL() string {
	if n.httpTLS != nil {
		return "https://" + n.httpAddr
	}
	return "http://" + n.httpAddr
}

// httpsSetup: on any address but loopback the console and API are HTTPS
// only, with the site's own certificate (--tls-cert) or this node's
// certificate of the cluster CA (which names its advertised addresses). The
// site's certificate is used on loopback too.
func (n *Node) httpsSetup() error {
	switch {
	case n.cfg.TLSCert != "":
		kp, err := tls.LoadX509KeyPair(n.cfg.TLSCert, n.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		n.httpTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kp}}
	case !isLoopback(n.cfg.HTTP):
		n.caPinned = true
		n.httpTLS = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := n.tls.current(); c != nil {
				return c, nil
			}
			return nil, errors.New("this node has not been let into a cluster yet")
		}}
	}
	return nil
}

// caPin is what an activation link carries for the wallet to trust this
// node: the cluster CA's fingerprint, when HTTPS uses its certificate.
func (n *Node) caPin() string {
	if !n.caPinned {
		return ""
	}
	if ca := n.tls.caCert(); ca != nil {
		return pki.Fingerprint(ca)
	}
	return ""
}

func isLoopback(listen string) bool {
	h, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Addr is the advertised HTTP address.
func (n *Node) Addr() string { return n.httpAddr }

// ID is the node id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Raft exposes consensus to tests in this module.
func (n *Node) Raft() *consensus.Raft { return n.raft }

func parseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// GossipAddr is the advertised gossip address, for --join.
func (n *Node) GossipAddr() string { return n.members.Addr() }
