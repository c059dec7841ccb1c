package state

import (
	"testing"
	"time"

	"lintel/consensus/command"
)

// The state keeps the newest HistoryKeep lines of each account, trimming
// HistoryTrim at a time; the trimmed lines leave as archive changes that
// carry them, oldest first, once each. Other accounts keep theirs.
func TestHistoryRetentionPerAccount(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"})
	other := h.s.History.count.At("acc")
	h.s.History.put(HistoryEntry{Index: 1, AccountID: "other", Area: "Customer Sites", Action: "kept"})
	var archived []HistoryEntry
	apply := func() {
		h.idx++
		h.at = h.at.Add(time.Second)
		c := command.Command{Header: command.Header{RequestID: "u" + itoa(int(h.idx)), Actor: "op", At: h.at},
			Body: &command.UpdateSite{ID: "s1", AccountID: "acc", CardCost: new(int64(h.idx % 7))}}
		res, ch := h.s.Apply(h.idx, c)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		for _, c := range ch {
			if c.Op == "archive" {
				if c.Entry == nil || c.Table != "history" {
					t.Fatalf("archive change without its line: %+v", c)
				}
				archived = append(archived, *c.Entry)
			}
		}
	}
	for h.s.History.count.At("acc") < HistoryKeep+HistoryTrim {
		apply()
	}
	if len(archived) != 0 {
		t.Fatalf("%d lines archived before the account passed %d", len(archived), HistoryKeep+HistoryTrim)
	}
	oldest := h.s.History.Oldest("acc")
	apply()
	if n := h.s.History.count.At("acc"); n != HistoryKeep+1 || len(archived) != HistoryTrim {
		t.Fatalf("after the trim: %d lines kept, %d archived; want %d and %d", n, len(archived), HistoryKeep+1, HistoryTrim)
	}
	for i, e := range archived {
		if e.AccountID != "acc" || (i == 0 && e.Index != oldest) || (i > 0 && e.Index <= archived[i-1].Index) {
			t.Fatalf("archived line %d: %+v (oldest kept was %d)", i, e, oldest)
		}
	}
	if next := h.s.History.Oldest("acc"); next <= archived[len(archived)-1].Index {
		t.Fatalf("the oldest line kept (%d) is not after the last archived (%d)", next, archived[len(archived)-1].Index)
	}
	if h.s.History.count.At("other") != 1 || other == 0 {
		t.Fatal("another account's history was trimmed")
	}
	n := 0
	for range h.s.History.Account("acc") {
		n++
	}
	if n != HistoryKeep+1 || h.s.History.Len() != HistoryKeep+2 {
		t.Fatalf("the table holds %d lines of acc and %d in all", n, h.s.History.Len())
	}
}
