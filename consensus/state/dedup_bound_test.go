package state

import (
	"fmt"
	"testing"

	"lintel/consensus/command"
)

// The dedup table is bounded whatever the write rate: within one second of
// stamps, only the newest DedupRetryMax request ids keep their answers, and
// expiring them costs O(1) an apply (the queue was copied on every apply).
func TestDedupBoundedByCount(t *testing.T) {
	h := newHarness(t)
	at := h.at.Add(1)
	n := DedupRetryMax + 5000
	for i := 0; i < n; i++ {
		h.idx++
		h.s.ApplyAt(h.idx, at, made(fmt.Sprintf("r%06d", i), "", at, &command.DeleteSession{TokenHash: "x"}))
	}
	if got := h.s.Dedup.Len(); got > DedupRetryMax+1 {
		t.Fatalf("dedup holds %d answers, want at most %d", got, DedupRetryMax+1)
	}
	if _, ok := h.s.DedupResult("r000000"); ok {
		t.Fatal("the oldest request id is still kept past the bound")
	}
	if _, ok := h.s.DedupResult(fmt.Sprintf("r%06d", n-1)); !ok {
		t.Fatal("the newest request id lost its answer")
	}
	if n := h.s.DedupRetry.Len(); n > DedupRetryMax || h.s.Dedup.Len() > DedupRetryMax {
		t.Fatalf("the retry queue keeps %d ids and the table %d answers, over the bound %d", n, h.s.Dedup.Len(), DedupRetryMax)
	}
}

func BenchmarkApplyWithFullDedup(b *testing.B) {
	h := newHarness(&testing.T{})
	at := h.at.Add(1)
	for i := 0; i < DedupRetryMax; i++ {
		h.idx++
		h.s.ApplyAt(h.idx, at, made(fmt.Sprintf("w%06d", i), "", at, &command.DeleteSession{TokenHash: "x"}))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.idx++
		h.s.ApplyAt(h.idx, at, made(fmt.Sprintf("b%09d", i), "", at, &command.DeleteSession{TokenHash: "x"}))
	}
}
