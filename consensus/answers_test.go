package consensus

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

func applyOne(t *testing.T, f *fsm, idx uint64, c command.Command) state.Result {
	t.Helper()
	data, err := command.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.ApplyBatch([]*raft.Log{{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}})[0].(state.Result)
}

// A retry of a write in flight (the same plain request id) gets its first
// answer back whole from the FSM, though the replicated dedup entry keeps
// only its digest; a node that restored a snapshot since has lost the value
// and says the write applied (Replayed), never applying it twice.
func TestRetryGetsItsFirstAnswer(t *testing.T) {
	f := newFSM(nil)
	var idx uint64
	applyLogs(t, f, &idx, initCmd().Body)
	c := cmd(100, &command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"})
	idx++
	first := applyOne(t, f, idx, c)
	if first.Err != nil || first.Value == nil {
		t.Fatalf("first: %+v", first)
	}
	c.Body = &command.CreateSite{ID: "s2", AccountID: "acc", Name: "Paris"}
	idx++
	again := applyOne(t, f, idx, c)
	if !bytes.Equal(again.Value, first.Value) || again.Replayed != idx-1 {
		t.Fatalf("retry: %+v, want the first answer %s", again, first.Value)
	}
	if e, _ := f.st.Load().Dedup.Get(c.RequestID); e.Result.Value != nil {
		t.Fatalf("the dedup entry keeps the value (%d bytes): only its digest belongs in the replicated state", len(e.Result.Value))
	}

	g := newFSM(nil)
	if err := g.Restore(readCloser{bytes.NewReader(fsmBytes(t, f))}); err != nil {
		t.Fatal(err)
	}
	idx++
	late := applyOne(t, g, idx, c)
	if late.Value != nil || late.Replayed == 0 || late.Sum != state.SumOf(first.Value) || g.st.Load().Sites.Len() != 1 {
		t.Fatalf("retry after a restore: %+v, %d sites", late, g.st.Load().Sites.Len())
	}
}
