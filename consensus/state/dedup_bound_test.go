package state

import (
	"bytes"
	"fmt"
	"testing"
	"time"

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

// The answers kept whole for idempotency keys are bounded in bytes too, by
// dropping the oldest keys; the count is derived again on restore.
func TestDedupKeptAnswersBoundedInBytes(t *testing.T) {
	r := newRegistry(t, 0)
	r.newCard("c1", "101")
	at := r.at.Add(1)
	n := 0
	first := ""
	for r.s.dedupKeptBytes+1000 < DedupKeptMaxBytes || n < 100 {
		r.idx++
		n++
		c := made(fmt.Sprintf("k%06d", n), "", at, &command.UpdateCard{ID: "c1", AccountID: "acc", Phone: new(fmt.Sprintf("+44 20 7946 %04d", n%10000))})
		c.Idempotent = true
		res, _ := r.s.ApplyAt(r.idx, at, c)
		if res.Err != nil || len(res.Value) < 100 {
			t.Fatalf("update %d: %+v", n, res)
		}
		if first == "" {
			first = c.RequestID
		}
	}
	for range 2000 {
		r.idx++
		n++
		c := made(fmt.Sprintf("k%06d", n), "", at, &command.UpdateCard{ID: "c1", AccountID: "acc", Phone: new("+44 20 7946 0000")})
		c.Idempotent = true
		r.s.ApplyAt(r.idx, at, c)
	}
	// Expiry runs before the command applies: the newest answer may go over.
	newest, _ := r.s.DedupResult(fmt.Sprintf("k%06d", n))
	if r.s.dedupKeptBytes > DedupKeptMaxBytes+int64(len(newest.Value)) {
		t.Fatalf("the kept answers hold %d bytes, over %d and the newest answer", r.s.dedupKeptBytes, DedupKeptMaxBytes)
	}
	if _, ok := r.s.DedupResult(first); ok {
		t.Fatal("the oldest key is still kept past the byte bound")
	}
	if res, ok := r.s.DedupResult(fmt.Sprintf("k%06d", n)); !ok || len(res.Value) == 0 {
		t.Fatal("the newest key lost its answer")
	}
	got, err := Decode(bytes.NewReader(encode(t, r.s)))
	if err != nil {
		t.Fatal(err)
	}
	if got.dedupKeptBytes != r.s.dedupKeptBytes {
		t.Fatalf("restored: %d kept bytes, want %d", got.dedupKeptBytes, r.s.dedupKeptBytes)
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

// Check costs the same on a replica that has been quiet for a day with its
// dedup table full of expired entries: it expires nothing on its copy.
func TestCheckDoesNotExpireDedup(t *testing.T) {
	h := newHarness(t)
	at := h.at.Add(1)
	for i := range DedupRetryMax {
		h.idx++
		h.s.ApplyAt(h.idx, at, made(fmt.Sprintf("w%06d", i), "", at, &command.DeleteSession{TokenHash: "x"}))
	}
	later := at.Add(25 * time.Hour)
	c := made("", "", later, &command.DeleteSession{TokenHash: "nope"})
	allocs := testing.AllocsPerRun(5, func() {
		if rej := h.s.Check(c, later); rej == nil || rej.Code != "session_not_found" {
			t.Fatalf("check: %v", rej)
		}
	})
	if allocs > 100 {
		t.Fatalf("a check on a quiet replica made %.0f allocations", allocs)
	}
	if n := h.s.Dedup.Len(); n < DedupRetryMax {
		t.Fatalf("the check changed the state: %d dedup entries left", n)
	}
}
