package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

func open(t *testing.T, id, dir string) *Raft {
	t.Helper()
	r, err := Open(Config{NodeID: id, DataDir: dir, Bind: "127.0.0.1:0", LogLevel: "error", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// single opens a bootstrapped one-node cluster in dir, initialized, and
// closes it at the end of the test.
func single(t *testing.T, dir string) *Raft {
	t.Helper()
	r := open(t, "n1", dir)
	t.Cleanup(func() { r.Close() })
	if err := r.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, r)
	mustApply(t, r, initCmd())
	return r
}

func waitLeader(t *testing.T, rs ...*Raft) *Raft {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rs {
			if r.IsLeader() {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

var clock = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

func cmd(i int, b command.Body) command.Command {
	return command.Command{Header: command.Header{RequestID: fmt.Sprintf("r%d", i), Actor: "op", At: clock.Add(time.Duration(i) * time.Second)}, Body: b}
}

func initCmd() command.Command {
	return cmd(0, &command.Init{AccountID: "acc", AccountName: "HQ", AccountKind: state.AccountEndCustomer, ProfileID: "p",
		OperatorID: "op", Email: "a@b.c", PasswordHash: "h", ClusterSecret: bytes.Repeat([]byte{1}, 32)})
}

func mustApply(t *testing.T, r *Raft, c command.Command) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, res, err := r.Apply(ctx, c)
	if err != nil || res.Err != nil {
		t.Fatalf("apply %T: %v %v", c.Body, err, res.Err)
	}
	return idx
}

func stateBytes(r *Raft) []byte {
	var buf bytes.Buffer
	r.Read(func(s *state.State) {
		c := s.Clone()
		c.Index = 0 // nodes may have applied a configuration entry more or less
		c.Encode(&buf)
	})
	return buf.Bytes()
}

func TestSingleNodeApplyReadYourWrite(t *testing.T) {
	r := single(t, t.TempDir())
	idx := mustApply(t, r, cmd(1, &command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.WaitForIndex(ctx, idx); err != nil {
		t.Fatal(err)
	}
	var name string
	r.Read(func(s *state.State) { name = s.Sites.At("s1").Name })
	if name != "London" {
		t.Fatalf("site name %q", name)
	}
	ri, err := r.ReadIndex(ctx)
	if err != nil || ri < idx {
		t.Fatalf("read index %d (err %v), want ≥ %d", ri, err, idx)
	}
	// A rejection comes back as a result, not an error.
	_, res, err := r.Apply(ctx, cmd(2, &command.CreateSite{ID: "s2", AccountID: "acc", Name: "london"}))
	if err != nil || res.Err == nil || res.Err.Code != "duplicate_name" {
		t.Fatalf("duplicate: %v %+v", err, res.Err)
	}
}

func TestWaitForIndexHonoursContext(t *testing.T) {
	r := open(t, "n1", t.TempDir())
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.WaitForIndex(ctx, 1000); err == nil {
		t.Fatal("waited for an index that never comes and returned nil")
	}
}

// Restart: the state comes back from the snapshot plus the log after it.
func TestSnapshotRestoreOnRestart(t *testing.T) {
	dir := t.TempDir()
	r := open(t, "n1", dir)
	r.Bootstrap()
	waitLeader(t, r)
	mustApply(t, r, initCmd())
	for i := 1; i <= 20; i++ {
		mustApply(t, r, cmd(i, &command.CreateSite{ID: fmt.Sprintf("s%d", i), AccountID: "acc", Name: fmt.Sprintf("Site %d", i)}))
		if i == 10 {
			if err := r.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := stateBytes(r)
	r.Close()

	r2 := open(t, "n1", dir)
	waitLeader(t, r2)
	if err := r2.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := stateBytes(r2); !bytes.Equal(got, want) {
		t.Fatalf("state after restart differs:\n%s\n%s", got, want)
	}
	if _, err := HasState(dir); err == nil {
		t.Fatal("HasState read a data dir another Raft holds open")
	}
	r2.Close()
	if has, err := HasState(dir); !has || err != nil {
		t.Fatalf("HasState = %v, %v", has, err)
	}
}

func TestHasStateOnEmptyDir(t *testing.T) {
	if has, err := HasState(t.TempDir()); has || err != nil {
		t.Fatalf("HasState = %v, %v", has, err)
	}
}

func TestOpenRefusesUnspecifiedAdvertise(t *testing.T) {
	_, err := Open(Config{NodeID: "x", DataDir: t.TempDir(), Bind: "0.0.0.0:0", LogOutput: io.Discard})
	if err == nil {
		t.Fatal("opened with 0.0.0.0 and no advertise address")
	}
}

// Three Raft nodes on loopback TCP: they converge to identical bytes, and
// when the leader goes another takes writes.
func TestThreeNodesConvergeAndFailOver(t *testing.T) {
	rs := []*Raft{open(t, "n1", t.TempDir()), open(t, "n2", t.TempDir()), open(t, "n3", t.TempDir())}
	defer func() {
		for _, r := range rs {
			r.Close()
		}
	}()
	rs[0].Bootstrap()
	leader := waitLeader(t, rs[0])
	for _, r := range rs[1:] {
		if err := leader.AddServer(r.cfg.NodeID, r.LocalAddr(), true); err != nil {
			t.Fatal(err)
		}
	}
	servers, _ := leader.Servers()
	if len(servers) != 3 {
		t.Fatalf("servers: %+v", servers)
	}
	mustApply(t, leader, initCmd())
	var last uint64
	for i := 1; i <= 30; i++ {
		last = mustApply(t, leader, cmd(i, &command.CreateSite{ID: fmt.Sprintf("s%d", i), AccountID: "acc", Name: fmt.Sprintf("Site %d", i)}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range rs {
		if err := r.WaitForIndex(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	want := stateBytes(rs[0])
	for _, r := range rs[1:] {
		if !bytes.Equal(stateBytes(r), want) {
			t.Fatalf("%s diverged", r.cfg.NodeID)
		}
	}

	// The leader stops; the other two elect a new one and take writes.
	leader.Close()
	var rest []*Raft
	for _, r := range rs {
		if r != leader {
			rest = append(rest, r)
		}
	}
	start := time.Now()
	next := waitLeader(t, rest...)
	mustApply(t, next, cmd(100, &command.CreateSite{ID: "after", AccountID: "acc", Name: "After failover"}))
	t.Logf("new leader %s took a write %v after the old one stopped", next.cfg.NodeID, time.Since(start))
	// The follower's read index, asked of the new leader, covers that write.
	ri, err := next.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rest {
		if err := r.WaitForIndex(ctx, ri); err != nil {
			t.Fatal(err)
		}
		var ok bool
		r.Read(func(s *state.State) { _, ok = s.Sites.Get("after") })
		if !ok {
			t.Fatalf("%s misses the write after failover", r.cfg.NodeID)
		}
	}
	// The old leader is not leading any more (it was closed) and ReadIndex says so.
	if _, err := rest[0].ReadIndex(ctx); rest[0] != next && err != ErrNotLeader {
		t.Fatalf("follower ReadIndex: %v", err)
	}
	rs = rest // the closed leader is not closed twice
}

func TestApplyOnFollowerIsNotLeader(t *testing.T) {
	a, b := open(t, "a", t.TempDir()), open(t, "b", t.TempDir())
	defer a.Close()
	defer b.Close()
	a.Bootstrap()
	leader := waitLeader(t, a)
	if err := leader.AddServer("b", b.LocalAddr(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := b.Apply(ctx, initCmd()); err != ErrNotLeader {
		t.Fatalf("apply on follower: %v", err)
	}
}

// An unknown command type flagged as ignorable is skipped without harm.
func TestFSMSkipsIgnorableUnknownCommand(t *testing.T) {
	r := open(t, "n1", t.TempDir())
	defer r.Close()
	r.Bootstrap()
	waitLeader(t, r)
	good, _ := command.Encode(initCmd())
	unknown := append([]byte{0x7e | byte(command.IgnoreUnknown), command.Version}, good[2:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, res, err := r.ApplyEncoded(ctx, unknown)
	if err != nil || res.Err != nil || res.Value != nil {
		t.Fatalf("ignorable: %v %+v", err, res)
	}
	if r.AppliedIndex() < idx {
		t.Fatal("applied index did not move past the skipped entry")
	}
	// A non-ignorable unknown type stops this node's apply, loudly: the
	// command committed, so it is neither skipped nor answered as refused.
	bad := append([]byte{0x7e, command.Version}, good[2:]...)
	badIdx := r.AppliedIndex() + 1
	_, _, err = r.ApplyEncoded(ctx, bad)
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("undecodable: %v", err)
	}
	h := r.Halted()
	if h == nil || h.Index < badIdx || h.Type != "type 126" {
		t.Fatalf("halt = %+v", h)
	}
	var init bool
	r.Read(func(s *state.State) { init = s.Initialized })
	if init {
		t.Fatal("an undecodable command changed state")
	}
	// Nothing after it is applied, and no snapshot claims it was.
	before := r.AppliedIndex()
	if _, _, err := r.Apply(ctx, initCmd()); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("apply after the halt: %v", err)
	}
	if r.AppliedIndex() != before {
		t.Fatal("applied past an undecodable command")
	}
	if err := r.Snapshot(); err == nil {
		t.Fatal("a halted node took a snapshot")
	}
}
