package consensus

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// threeNodes starts a three-voter cluster in this process.
func threeNodes(t *testing.T) ([]*Raft, []string) {
	t.Helper()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	rs := []*Raft{open(t, "n1", dirs[0]), open(t, "n2", dirs[1]), open(t, "n3", dirs[2])}
	rs[0].Bootstrap()
	leader := waitLeader(t, rs[0])
	for _, r := range rs[1:] {
		if err := leader.AddServer(r.cfg.NodeID, r.LocalAddr(), true); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, leader, initCmd())
	return rs, dirs
}

func closeAll(rs []*Raft) {
	for _, r := range rs {
		if r != nil {
			r.Close()
		}
	}
}

// Raft blocks on a full NotifyCh; one nobody read froze a node on its 33rd
// leadership win. After 120 leadership changes every node still commits.
func TestManyLeadershipChangesDoNotFreeze(t *testing.T) {
	rs, _ := threeNodes(t)
	defer closeAll(rs)
	changes := 0
	for changes < 120 {
		l := waitLeader(t, rs...)
		done := make(chan error, 1)
		go func() { done <- l.TransferLeadership() }()
		select {
		case err := <-done:
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("a leadership transfer hung after %d changes", changes)
		}
		changes++
	}
	l := waitLeader(t, rs...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	idx, res, err := l.Apply(ctx, cmd(1, &command.CreateSite{ID: "s1", AccountID: "acc", Name: "After"}))
	if err != nil || res.Err != nil {
		t.Fatalf("write after %d leadership changes: %v %v", changes, err, res.Err)
	}
	for _, r := range rs {
		if err := r.WaitForIndex(ctx, idx); err != nil {
			t.Fatalf("%s after %d leadership changes: %v", r.cfg.NodeID, changes, err)
		}
		if _, err := r.Servers(); err != nil {
			t.Fatalf("%s configuration: %v", r.cfg.NodeID, err)
		}
	}
}

// A node that restarts alone, with no leader to name the commit index,
// serves everything it had applied: with a snapshot and entries after it,
// and with no snapshot at all.
func TestRestartCutOffServesWhatItApplied(t *testing.T) {
	for _, snap := range []bool{true, false} {
		t.Run(fmt.Sprintf("snapshot=%v", snap), func(t *testing.T) {
			rs, dirs := threeNodes(t)
			defer closeAll(rs)
			leader := waitLeader(t, rs...)
			for i := 1; i <= 5; i++ {
				mustApply(t, leader, cmd(i, &command.CreateSite{ID: fmt.Sprintf("s%d", i), AccountID: "acc", Name: fmt.Sprintf("Site %d", i)}))
			}
			// n3 follows; the node that restarts is a follower.
			var f *Raft
			var fi int
			for i, r := range rs {
				if r != leader {
					f, fi = r, i
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if snap {
				if err := f.WaitForIndex(ctx, leader.AppliedIndex()); err != nil {
					t.Fatal(err)
				}
				if err := f.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			last := mustApply(t, leader, cmd(6, &command.DeleteSite{ID: "s2", AccountID: "acc"}))
			if err := f.WaitForIndex(ctx, last); err != nil {
				t.Fatal(err)
			}
			want := stateBytes(f)
			// Everyone stops; f comes back alone.
			closeAll(rs) // Close is idempotent: the deferred closeAll does nothing more
			r := open(t, f.cfg.NodeID, dirs[fi])
			defer r.Close()
			if r.AppliedIndex() < last {
				t.Fatalf("restarted alone at applied index %d, had applied %d", r.AppliedIndex(), last)
			}
			var gone bool
			r.Read(func(s *state.State) { _, ok := s.Sites.Get("s2"); gone = !ok })
			if !gone {
				t.Fatal("a site deleted before the restart is back")
			}
			if got := stateBytes(r); !bytes.Equal(got, want) {
				t.Fatalf("state after a cut-off restart differs")
			}
		})
	}
}

// The mark survives a torn write: the other slot still holds an index.
func TestAppliedMarkSurvivesTornWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "applied")
	m, err := openAppliedMark(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := m.Set(i * 10); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	b, _ := os.ReadFile(p)
	// The last write (50) went to slot 0; tear it.
	b[3] ^= 0xff
	os.WriteFile(p, b, 0o600)
	m, err = openAppliedMark(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Index() != 40 {
		t.Fatalf("after a torn write: %d, want 40", m.Index())
	}
	if err := m.Reset(7); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m, _ = openAppliedMark(p)
	defer m.Close()
	if m.Index() != 7 {
		t.Fatalf("after reset: %d, want 7", m.Index())
	}
}

// A follower told of a commit applies it from its own log at once, while
// Raft hands the same entries over too: each entry is applied once, in
// order, and every node ends with the same bytes.
func TestCatchUpFromOwnLog(t *testing.T) {
	rs, _ := threeNodes(t)
	defer closeAll(rs)
	leader := waitLeader(t, rs...)
	var followers []*Raft
	for _, r := range rs {
		if r != leader {
			followers = append(followers, r)
		}
	}
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; i < 40; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c := cmd(1000+g*100+i, &command.CreateSite{ID: id, AccountID: "acc", Name: "Site " + id})
				idx, res, err := leader.Apply(ctx, c)
				if err == nil && res.Err != nil {
					err = res.Err
				}
				if err == nil {
					f := followers[i%2]
					err = f.CatchUp(ctx, idx, leader.TermOf(idx))
					var ok bool
					f.Read(func(s *state.State) { _, ok = s.Sites.Get(id) })
					if err == nil && !ok {
						err = fmt.Errorf("%s caught up to %d without site %s", f.cfg.NodeID, idx, id)
					}
				}
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	last := mustApply(t, leader, cmd(9999, &command.CreateSite{ID: "last", AccountID: "acc", Name: "Last"}))
	for _, r := range rs {
		if err := r.WaitForIndex(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	want := stateBytes(leader)
	for _, f := range followers {
		if !bytes.Equal(stateBytes(f), want) {
			t.Fatalf("%s differs from the leader after catching up from its own log", f.cfg.NodeID)
		}
	}
	// A wrong term is never taken as committed.
	idx := mustApply(t, leader, cmd(10000, &command.CreateSite{ID: "t", AccountID: "acc", Name: "T"}))
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	f := followers[0]
	if err := f.CatchUp(short, idx+5, leader.TermOf(idx)); err == nil {
		t.Fatal("caught up to an index no log holds")
	}
}

// A deadline already passed is not "no deadline": raft.Apply takes a zero or
// negative timeout as "wait for ever", so nothing is submitted at all.
func TestApplyWithPassedDeadlineSubmitsNothing(t *testing.T) {
	r := open(t, "n1", t.TempDir())
	defer r.Close()
	r.Bootstrap()
	waitLeader(t, r)
	mustApply(t, r, initCmd())
	time.Sleep(50 * time.Millisecond) // the leader's nudge barrier after a lone write
	before := r.LastIndex()
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	start := time.Now()
	_, _, err := r.Apply(ctx, cmd(1, &command.CreateSite{ID: "late", AccountID: "acc", Name: "Late"}))
	if err == nil {
		t.Fatal("applied with a deadline already passed")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("took %v to refuse", d)
	}
	time.Sleep(50 * time.Millisecond)
	if r.LastIndex() != before {
		t.Fatalf("an entry was submitted: last index %d → %d", before, r.LastIndex())
	}
}
