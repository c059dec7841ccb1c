package consensus

import (
	"bytes"
	"context"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Through a real Raft, the state judges a command's time against the
// leader's stamp (raft.Log.AppendedAt): one made on a clock 10 minutes ahead
// is refused, one made now is accepted, and the state clock stays on real
// time. A restart replays the stamps stored with the log to the same bytes.
func TestCommandClockAheadOfLeaderIsRefused(t *testing.T) {
	dir := t.TempDir()
	r := open(t, "n1", dir)
	if err := r.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, r)
	mustApply(t, r, initCmd())
	at := func(id string, when time.Time, b command.Body) command.Command {
		return command.Command{Header: command.Header{RequestID: id, Actor: "op", At: when, Node: "n2"}, Body: b}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, res, err := r.Apply(ctx, at("ahead", time.Now().Add(10*time.Minute), &command.CreateSite{ID: "s1", AccountID: "acc", Name: "Ahead"}))
	if err != nil || res.Err == nil || res.Err.Code != "clock_skew" || res.Err.Kind != state.Invalid {
		t.Fatalf("a command 10 minutes ahead: %v %+v", err, res.Err)
	}
	mustApply(t, r, at("now", time.Now(), &command.CreateSite{ID: "s2", AccountID: "acc", Name: "Now"}))
	var clock time.Time
	var sites int
	r.Read(func(s *state.State) { clock, sites = s.Clock, s.Sites.Len() })
	if sites != 1 || clock.After(time.Now()) || time.Since(clock) > time.Minute || clock.Location() != time.UTC {
		t.Fatalf("sites %d, clock %v: want one site and the leader's real time", sites, clock)
	}

	want := stateBytes(r)
	r.Close()
	r2 := open(t, "n1", dir)
	defer r2.Close()
	waitLeader(t, r2)
	if err := r2.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := stateBytes(r2); !bytes.Equal(got, want) {
		t.Fatalf("the replayed stamps give another state:\n%s\n%s", got, want)
	}
}
