package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"lintel/consensus/command"
)

func digest(t *testing.T, s *State) string {
	t.Helper()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The digest is the hash of the snapshot bytes: the same log gives the same
// digest, a restored state the digest of the state it was taken from.
func TestDigest(t *testing.T) {
	h := richLog(t)
	d := digest(t, h.s)
	sum := sha256.Sum256(encode(t, h.s))
	if d != hex.EncodeToString(sum[:]) || len(d) != 64 {
		t.Fatalf("digest %q is not the SHA-256 of the encoding", d)
	}
	if again := digest(t, h.s); again != d {
		t.Fatalf("digest of an unchanged state changed: %s, then %s", d, again)
	}

	// Two fresh states fed the same log.
	a, b := New(), New()
	for i, c := range h.log {
		a.Apply(uint64(i+1), c)
		b.Apply(uint64(i+1), c)
	}
	if da, db := digest(t, a), digest(t, b); da != d || db != d {
		t.Fatalf("same log, different digests: %s, %s, original %s", da, db, d)
	}

	// One command more on one of them: the two differ, and so does a
	// rejected command (it moves the index and the dedup table).
	next := func(id, name string) command.Command {
		return command.Command{Header: command.Header{RequestID: "digest-" + id, Actor: "op", At: h.at.Add(time.Minute)},
			Body: &command.CreateSite{ID: id, AccountID: "acc", Name: name}}
	}
	n := uint64(len(h.log)) + 1
	a.Apply(n, next("s-a", "Madrid"))
	if digest(t, a) == d {
		t.Fatal("a command changed nothing in the digest")
	}
	b.Apply(n, next("s-b", "Lisbon"))
	if digest(t, a) == digest(t, b) {
		t.Fatal("different commands at the same index give the same digest")
	}
	c := New()
	for i, cmd := range h.log {
		c.Apply(uint64(i+1), cmd)
	}
	if res, _ := c.Apply(n, next("s-c", "London")); res.Err == nil {
		t.Fatal("duplicate name accepted: the test proves nothing")
	}
	if digest(t, c) == d {
		t.Fatal("a rejected command left the digest unchanged")
	}

	// Restored from its snapshot, then taken from a snapshot copy.
	got, err := Decode(bytes.NewReader(encode(t, h.s)))
	if err != nil {
		t.Fatal(err)
	}
	if dg := digest(t, got); dg != d {
		t.Fatalf("restored state's digest %s, original %s", dg, d)
	}
	sn := h.s.Snapshot()
	h.mustApply(&command.CreateSite{ID: "site-later", AccountID: "acc", Name: "Oslo"})
	if ds, err := sn.Digest(); err != nil || ds != d {
		t.Fatalf("snapshot digest %s (%v), want %s: later applies must not change it", ds, err, d)
	}
}
