package consensus

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// The history lines a batch trims from the state reach the archive before
// the batch is published (a reader never finds them in neither place); an
// archive that cannot take them stops the apply with the state as it was.
func TestTrimmedHistoryIsArchivedBeforePublishing(t *testing.T) {
	f := newFSM(nil)
	var idx uint64
	applyLogs(t, f, &idx, initCmd().Body, &command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"})
	var archived []state.HistoryEntry
	fail := false
	f.archive = func(lines []state.HistoryEntry) error {
		if fail {
			return errors.New("disk full")
		}
		// The published version still holds them.
		if st := f.st.Load(); st.History.Oldest("acc") > lines[0].Index {
			t.Errorf("line %d left the published state before it was archived", lines[0].Index)
		}
		archived = append(archived, lines...)
		return nil
	}
	cost := int64(0)
	update := func() state.Result {
		idx++
		cost = (cost + 1) % 7
		return applyOne(t, f, idx, cmd(int(idx), &command.UpdateSite{ID: "s1", AccountID: "acc", CardCost: new(cost)}))
	}
	for len(archived) == 0 {
		if r := update(); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if len(archived) != state.HistoryTrim {
		t.Fatalf("%d lines archived, want %d", len(archived), state.HistoryTrim)
	}
	// The next HistoryTrim+1 lines trim again.
	fail = true
	for range state.HistoryTrim + 1 {
		before := fsmBytes(t, f)
		idx++
		data, err := command.Encode(cmd(int(idx), &command.UpdateSite{ID: "s1", AccountID: "acc", CardCost: new(int64(idx % 7))}))
		if err != nil {
			t.Fatal(err)
		}
		res := f.ApplyBatch([]*raft.Log{{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}})[0]
		h, ok := res.(*Halt)
		if !ok {
			continue // no trim in this one
		}
		if h.Type != "archive" || h.Index != idx || f.halt.Load() == nil {
			t.Fatalf("halt %+v, want type archive at %d", h, idx)
		}
		if got := fsmBytes(t, f); string(got) != string(before) || f.applied.Load() != idx-1 {
			t.Fatalf("the batch whose lines could not be archived changed the state (applied %d)", f.applied.Load())
		}
		return
	}
	t.Fatal("no apply trimmed the history while the archive failed")
}
