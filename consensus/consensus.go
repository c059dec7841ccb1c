// Package consensus is the only user of hashicorp/raft and raft-boltdb: it
// opens the log on disk, bootstraps, joins and removes servers, applies
// commands and serves strong reads.
package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Config opens one node's Raft.
type Config struct {
	NodeID    string
	DataDir   string
	Bind      string // Raft listen address
	Advertise string // address the others dial; the bind address when empty
	// Stream, when set, carries Raft instead of plain TCP on Bind (the
	// node's mutual-TLS listener); Bind and Advertise are then unused.
	Stream    raft.StreamLayer
	LogLevel  string
	LogOutput io.Writer
	// Observe gets the change events of every applied batch. It must not block.
	Observe func([]state.Change)
	// Archive keeps the account history lines a batch takes out of the
	// replicated state, before the batch is published; an error stops this
	// node's apply (Halt, type "archive") rather than lose them.
	Archive func([]state.HistoryEntry) error
	// ApplyLatency, when set, observes the seconds each Apply took.
	ApplyLatency interface{ Observe(float64) }
}

// Timeouts for buildings on a LAN, on small boxes that also run doors.
// A follower calls an election after 0.4–0.8 s without its leader, so a dead
// leader is replaced inside the 1.5 s target (500 ms made the slowest of five
// failovers 1.6 s). The leader's lease is as long as the heartbeat timeout
// (raft's upper bound): with 200 ms a leader
// stepped down whenever a burst of writes on two cores delayed its
// followers' answers that long, and each step-down refused writes for up
// to a second. CommitTimeout is how often an idle leader sends each
// follower an AppendEntries with its commit index (heartbeats carry none):
// followers learn a commit with the next message, at once under load; after
// a lone write the leader nudges them (nudge), and a follower answering a
// write applies from its own log (CatchUp), so nothing waits for it. 250 ms
// (raft's default is 50) keeps an idle follower's "current" sample within
// 0.25–0.5 s, well inside the second node.current allows, and took an idle
// leader from 4.3 % of a core to 2.8–3.1 %, a follower from 2.0 % to 1.5 %
// (1.6–2.0 % and 0.8–0.9 % on a quiet machine).
// Heartbeats go every tenth of the heartbeat timeout, and the lease needs
// them that often: a leader that ran with a 1 s heartbeat timeout (beats
// every 100–200 ms, for less idle CPU) lost its lease once in a 10-minute
// run at 64 clients. Pre-vote (on by default in raft 1.7) keeps a node that
// was cut off from disturbing the others when it comes back.
func raftConfig(c Config, logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = 400 * time.Millisecond
	rc.ElectionTimeout = 400 * time.Millisecond
	rc.LeaderLeaseTimeout = 400 * time.Millisecond
	rc.CommitTimeout = 250 * time.Millisecond
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.ShutdownOnRemove = false
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 10240
	rc.Logger = logger
	return rc
}

// Errors callers act on.
var (
	ErrNotLeader = errors.New("this node is not the leader")
	// ErrUnknownOutcome: the write may or may not commit; retry with the same request id.
	ErrUnknownOutcome = errors.New("the write's outcome is unknown")
	ErrNoLeader       = errors.New("the cluster has no leader")
)

// Raft is one node's consensus.
type Raft struct {
	cfg       Config
	raft      *raft.Raft
	fsm       *fsm
	logs      *logStore
	transport *tapTransport
	cache     raft.LogStore
	mark      *appliedMark
	cur       *currency
	curPath   string
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	nudging   atomic.Bool
}

// Open opens (or creates) the Raft state in DataDir/raft and DataDir/snapshots.
func Open(c Config) (*Raft, error) {
	var adv net.Addr // a nil interface, not a nil *TCPAddr: the transport checks for nil
	if c.Stream == nil {
		// Without an advertise address the transport offers its own listener's
		// address (port 0 becomes the real port); it refuses 0.0.0.0.
		if c.Advertise != "" {
			a, err := net.ResolveTCPAddr("tcp", c.Advertise)
			if err != nil {
				return nil, fmt.Errorf("raft advertise address %q: %w", c.Advertise, err)
			}
			if a.IP == nil || a.IP.IsUnspecified() || a.Port == 0 {
				return nil, fmt.Errorf("raft advertise address %q is not an address other nodes can dial; set --advertise-raft", c.Advertise)
			}
			adv = a
		} else if h, _, err := net.SplitHostPort(c.Bind); err == nil {
			if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
				return nil, fmt.Errorf("raft listens on %q, which other nodes cannot dial; set --advertise-raft", c.Bind)
			}
		}
	}
	out := c.LogOutput
	if out == nil {
		out = os.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.LevelFromString(c.LogLevel), Output: out})

	raftDir := filepath.Join(c.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, err
	}
	mark, err := openAppliedMark(filepath.Join(raftDir, "applied"))
	if err != nil {
		return nil, err
	}
	// fsync stays on: an append returns once its batch is on disk.
	store, err := openLog(c.DataDir, logger)
	if err != nil {
		mark.Close()
		return nil, err
	}
	cache, err := raft.NewLogCache(1024, store)
	if err != nil {
		mark.Close()
		store.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.DataDir, 2, logger)
	if err != nil {
		mark.Close()
		store.Close()
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	// raft makes it 0755; it holds the whole state (password hashes, the CA key).
	if err := os.Chmod(filepath.Join(c.DataDir, "snapshots"), 0o700); err != nil {
		mark.Close()
		store.Close()
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	f := newFSM(c.Observe)
	f.archive = c.Archive
	f.log = logger
	if err := f.recover(cache, snaps, mark, c.DataDir, logger); err != nil {
		mark.Close()
		store.Close()
		return nil, err
	}
	var trans *raft.NetworkTransport
	if c.Stream != nil {
		trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: c.Stream, MaxPool: 5, Timeout: 10 * time.Second, Logger: logger})
	} else {
		trans, err = raft.NewTCPTransportWithLogger(c.Bind, adv, 5, 10*time.Second, logger)
	}
	if err != nil {
		mark.Close()
		store.Close()
		return nil, fmt.Errorf("raft listen on %s: %w", c.Bind, err)
	}
	cur := &currency{asOf: loadCurrent(filepath.Join(raftDir, "current"))}
	var self atomic.Pointer[Raft] // set once NewRaft returned
	f.onApply = func(applied uint64) {
		cur.applied(applied)
		if rf := self.Load(); rf != nil {
			rf.nudge(applied)
		}
	}
	tap := newTap(trans, func(commit uint64) { cur.seen(commit, time.Now(), f.applied.Load()) })
	rc := raftConfig(c, logger)
	// recover restored the newest snapshot and replayed the log after it.
	rc.NoSnapshotRestoreOnStart = true
	// No NotifyCh: Raft blocks on a full one. LeaderCh keeps the latest
	// change and never blocks; the leader loop rechecks State every second.
	r, err := raft.NewRaft(rc, f, cache, store, snaps, tap)
	if err != nil {
		tap.Close()
		mark.Close()
		store.Close()
		return nil, err
	}
	tap.guard(r)
	rf := &Raft{cfg: c, raft: r, fsm: f, logs: store, transport: tap, cache: cache, mark: mark,
		cur: cur, curPath: filepath.Join(raftDir, "current"), stop: make(chan struct{}), done: make(chan struct{})}
	self.Store(rf)
	go rf.currencyLoop()
	return rf, nil
}

// nudge tells the followers of a commit soon when nothing else is on its
// way to them. hashicorp/raft sends the commit index only with the next
// AppendEntries: under load that is a moment later, but after a lone write
// (a revoke) it waits for CommitTimeout, and the other buildings' doors with
// it. An empty barrier entry is replicated at once and carries the commit
// index; barriers are not handed to the FSM, so a barrier's own commit
// nudges nothing. It waits nudgeAfter first, and nudges only if no entry was
// appended meanwhile: a client writing one write after another would
// otherwise pay for a barrier between its writes (+2.7 ms each, measured).
// At most one in flight.
func (r *Raft) nudge(applied uint64) {
	if r.raft.State() != raft.Leader || r.raft.LastIndex() != applied || !r.nudging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.nudging.Store(false)
		select {
		case <-time.After(nudgeAfter):
		case <-r.stop:
			return
		}
		if r.raft.State() != raft.Leader || r.raft.LastIndex() != applied {
			return // something newer carries the commit index
		}
		within(2*time.Second, r.raft.Barrier(time.Second))
	}()
}

const nudgeAfter = 2 * time.Millisecond

// currencyLoop samples the leader's own commit index (followers learn it
// from the leader's messages) and keeps the last current time on disk.
func (r *Raft) currencyLoop() {
	defer close(r.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var saved time.Time
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			if r.raft.State() == raft.Leader {
				r.cur.seen(r.raft.CommitIndex(), now, r.fsm.applied.Load())
			}
			if asOf := r.cur.current(); asOf.Sub(saved) > 5*time.Second {
				if err := saveCurrent(r.curPath, asOf); err == nil {
					saved = asOf
				}
			}
		}
	}
}

// CurrentAsOf is the last moment this node's state held everything the
// leader had committed, as far as the node knew: the time the door's
// offline grace counts from. Zero when it never was (a new node).
func (r *Raft) CurrentAsOf() time.Time { return r.cur.current() }

// HasState reports whether DataDir already holds Raft state. It opens
// nothing for writing; a missing or empty raft.db holds none (the node knows
// from node.json whether it should), a damaged one is an error naming the
// file and what to do (datadir.go).
func HasState(dataDir string) (bool, error) {
	return hasState(dataDir)
}

// openStore opens the bolt log with fsync on. The lock timeout turns a second
// process on the same data dir into an error instead of a hang. checkStore
// reads the file first (read-only), so damage is an error here and not a
// crash later; the open runs guarded for the same reason.
func openStore(path string) (*raftboltdb.BoltStore, error) {
	if err := checkStore(path); err != nil {
		return nil, err
	}
	var s *raftboltdb.BoltStore
	err := guarded(func() (err error) {
		s, err = raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: time.Second}})
		return err
	})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, storeInUse(path)
	}
	if p := (panicked{}); errors.As(err, &p) {
		return nil, damagedStore(path, p.Error())
	}
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	return s, nil
}

// Bootstrap makes this node the single voter of a new cluster.
func (r *Raft) Bootstrap() error {
	cfg := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(r.cfg.NodeID), Address: r.transport.LocalAddr(),
	}}}
	return r.raft.BootstrapCluster(cfg).Error()
}

// Apply submits a command on the leader and returns its index and result.
func (r *Raft) Apply(ctx context.Context, c command.Command) (uint64, state.Result, error) {
	b, err := command.Encode(c)
	if err != nil {
		return 0, state.Result{}, err
	}
	return r.ApplyEncoded(ctx, b)
}

// ApplyEncoded submits an already encoded command (a forwarded write). It
// waits no longer than ctx (5 s without a deadline): a future Raft never
// answers must not hold a request, or a node, for good.
func (r *Raft) ApplyEncoded(ctx context.Context, b []byte) (uint64, state.Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	timeout := time.Until(deadline(ctx))
	if timeout <= 0 || ctx.Err() != nil {
		// raft.Apply takes 0 as "wait forever"; nothing was submitted.
		return 0, state.Result{}, fmt.Errorf("not submitted: %w", context.DeadlineExceeded)
	}
	start := time.Now()
	fut := r.raft.Apply(b, timeout)
	if err := wait(ctx, fut); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return 0, state.Result{}, ErrNotLeader
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout),
			errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown),
			errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return 0, state.Result{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
		}
		return 0, state.Result{}, err
	}
	if r.cfg.ApplyLatency != nil {
		r.cfg.ApplyLatency.Observe(time.Since(start).Seconds())
	}
	switch res := fut.Response().(type) {
	case state.Result:
		return fut.Index(), res, nil
	case *Halt:
		// Committed, but this node cannot apply it: the others do.
		return 0, state.Result{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, res)
	}
	return fut.Index(), state.Result{}, nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// wait waits for a Raft future, but no longer than ctx.
func wait(ctx context.Context, fut raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- fut.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// within waits for a future at most d.
func within(d time.Duration, fut raft.Future) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return wait(ctx, fut)
}

// WaitForIndex returns once the local state reflects index, so a node that
// answers a write can read it back.
func (r *Raft) WaitForIndex(ctx context.Context, index uint64) error {
	for {
		ch := r.fsm.waitCh()
		if r.fsm.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for index %d (applied %d): %w", index, r.fsm.applied.Load(), ctx.Err())
		}
	}
}

// ReadIndex confirms leadership and returns the index the state must reach
// for a linearizable read. Raft 1.7 has no ReadIndex API: VerifyLeader, then
// the commit index, stepped back past entries the state never sees (no-ops).
func (r *Raft) ReadIndex(ctx context.Context) (uint64, error) {
	if r.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	if err := wait(ctx, r.raft.VerifyLeader()); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, ErrNotLeader
		}
		return 0, err
	}
	commit := r.raft.CommitIndex()
	if r.TermOf(commit) != r.raft.CurrentTerm() {
		// A new leader keeps the commit index it had as a follower until an
		// entry of its own term commits: a write its predecessor answered may
		// lie beyond it. Not ready to serve a strong read yet.
		return 0, ErrNotLeader
	}
	applied := r.fsm.applied.Load()
	for i := commit; i > applied; i-- {
		var l raft.Log
		if err := r.cache.GetLog(i, &l); err != nil {
			break // compacted: it is in a snapshot the state already holds
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i, nil
		}
	}
	return applied, nil
}

// Read runs fn on the current version of the local state. A version is
// immutable and holds no lock: fn may take as long as it needs (an export,
// a check of a whole import) while applies go on, and may keep the state.
// fn must not change it.
func (r *Raft) Read(fn func(*state.State)) { fn(r.fsm.st.Load()) }

// Registry returns the current version of the local state (see Read).
func (r *Raft) Registry() *state.State { return r.fsm.st.Load() }

// AppliedIndex is the index the local state reflects.
func (r *Raft) AppliedIndex() uint64 { return r.fsm.applied.Load() }

// Leader returns the leader's id and Raft address, empty when unknown.
func (r *Raft) Leader() (id, addr string) {
	a, i := r.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the leader now.
func (r *Raft) IsLeader() bool { return r.raft.State() == raft.Leader }

// State is "leader", "follower", "candidate" or "shutdown".
func (r *Raft) State() string {
	switch r.raft.State() {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

// Term, CommitIndex, LastContact: for /metrics, /readyz and the cluster view.
func (r *Raft) Term() uint64                  { return r.raft.CurrentTerm() }
func (r *Raft) CommitIndex() uint64           { return r.raft.CommitIndex() }
func (r *Raft) LastIndex() uint64             { return r.raft.LastIndex() }
func (r *Raft) LastContact() time.Time        { return r.raft.LastContact() }
func (r *Raft) LeaderCh() <-chan bool         { return r.raft.LeaderCh() }
func (r *Raft) LocalAddr() string             { return string(r.transport.LocalAddr()) }
func (r *Raft) Barrier(d time.Duration) error { return within(d+time.Second, r.raft.Barrier(d)) }

// Server is one member of the Raft configuration.
type Server struct {
	ID      string
	Address string
	Voter   bool
}

// Servers returns the current Raft configuration.
func (r *Raft) Servers() ([]Server, error) {
	f := r.raft.GetConfiguration()
	if err := within(5*time.Second, f); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddServer adds (or re-addresses) a server; on the leader only.
func (r *Raft) AddServer(id, addr string, voter bool) error {
	var f raft.IndexFuture
	if voter {
		f = r.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second)
	} else {
		f = r.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second)
	}
	return leaderErr(within(11*time.Second, f))
}

// RemoveServer removes a server; on the leader only.
func (r *Raft) RemoveServer(id string) error {
	return leaderErr(within(11*time.Second, r.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second)))
}

// TransferLeadership hands leadership to another voter, if there is one.
func (r *Raft) TransferLeadership() error {
	return within(5*time.Second, r.raft.LeadershipTransfer())
}

// Snapshot forces a snapshot now (tests and benchmarks).
func (r *Raft) Snapshot() error { return within(time.Minute, r.raft.Snapshot()) }

func leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) {
		return ErrNotLeader
	}
	return err
}

// Close stops Raft and closes the log; a second call does nothing.
func (r *Raft) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.close() })
	return r.closeErr
}

func (r *Raft) close() error {
	close(r.stop)
	<-r.done
	if asOf := r.cur.current(); !asOf.IsZero() {
		saveCurrent(r.curPath, asOf)
	}
	err := r.raft.Shutdown().Error()
	r.transport.Close()
	r.fsm.amu.Lock()
	r.fsm.closed = true // a CatchUp in flight applies nothing more
	r.mark.Close()
	r.fsm.amu.Unlock()
	if cerr := r.logs.Close(); err == nil {
		err = cerr
	}
	return err
}

// Halted says why this node stopped applying the log; nil while it applies.
func (r *Raft) Halted() *Halt { return r.fsm.halt.Load() }

// TermOf is the term of the entry at index in this node's log, 0 when the
// log does not hold it.
func (r *Raft) TermOf(index uint64) uint64 {
	var l raft.Log
	if err := r.cache.GetLog(index, &l); err != nil {
		return 0
	}
	return l.Term
}

// CatchUp returns once the local state reflects index, which the leader
// said it committed in term. A follower learns of a commit only with the
// leader's next message (up to CommitTimeout later); but when its own log
// already holds the entry at index with that term, the log up to there is
// the leader's (Raft's log matching), so it is committed and the follower
// applies it from its own log now. Raft hands the same entries over later
// and the FSM skips them.
func (r *Raft) CatchUp(ctx context.Context, index, term uint64) error {
	poll := 250 * time.Microsecond
	for {
		ch := r.fsm.waitCh()
		if r.fsm.applied.Load() >= index {
			return nil
		}
		if term != 0 && r.raft.LastIndex() >= index && r.TermOf(index) == term {
			progress, err := r.applyFromLog(index)
			if err != nil {
				return err
			}
			if progress {
				continue
			}
			// A gap below (a snapshot installed a moment ago): Raft applies it.
		}
		// The entry is on its way from the leader (usually within a
		// millisecond, as the leader waited for a majority to store it), so
		// look again soon, then less often; any apply wakes it too.
		select {
		case <-ch:
		case <-time.After(poll):
			poll = min(2*poll, 16*time.Millisecond)
		case <-ctx.Done():
			return fmt.Errorf("waiting for index %d (applied %d): %w", index, r.fsm.applied.Load(), ctx.Err())
		}
	}
}

// applyFromLog applies this node's own log up to index, which is committed,
// and says whether it applied anything.
func (r *Raft) applyFromLog(index uint64) (bool, error) {
	f := r.fsm
	f.amu.Lock()
	defer f.amu.Unlock()
	from := f.applied.Load() + 1
	if from > index || f.closed {
		return false, nil
	}
	// A long way behind: in steps, not one long lock.
	logs, err := readLogs(r.cache, from, min(index, from+1023))
	if err != nil {
		return false, nil // compacted or not there: Raft applies it
	}
	before := f.applied.Load()
	f.applyLocked(logs, true)
	if h := f.halt.Load(); h != nil {
		return false, h
	}
	return f.applied.Load() > before, nil
}
