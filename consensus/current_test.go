package consensus

import (
	"path/filepath"
	"testing"
	"time"
)

// Current means applied up to the leader's commit index as known then, not
// merely hearing the leader: a node that keeps hearing commits it cannot
// apply stays at the last moment it had caught up.
func TestCurrencyFollowsApplies(t *testing.T) {
	var c currency
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	c.seen(10, t0, 10)
	if !c.current().Equal(t0) {
		t.Fatalf("caught up at t0: %v", c.current())
	}
	// The leader commits 11..13; this node stores nothing (a full disk).
	for i := 1; i <= 3; i++ {
		c.seen(uint64(10+i), t0.Add(time.Duration(i)*time.Second), 10)
	}
	// A new leader whose commit index lags says nothing new.
	c.seen(9, t0.Add(5*time.Second), 10)
	if !c.current().Equal(t0) {
		t.Fatalf("not applying, yet current as of %v", c.current())
	}
	// It applies 12: current as of when 12 was known committed.
	c.applied(12)
	if want := t0.Add(2 * time.Second); !c.current().Equal(want) {
		t.Fatalf("applied 12: current as of %v, want %v", c.current(), want)
	}
	c.applied(13)
	if want := t0.Add(3 * time.Second); !c.current().Equal(want) {
		t.Fatalf("applied 13: %v, want %v", c.current(), want)
	}
	// Kept across a restart.
	p := filepath.Join(t.TempDir(), "current")
	if err := saveCurrent(p, c.current()); err != nil {
		t.Fatal(err)
	}
	if got := loadCurrent(p); !got.Equal(c.current()) {
		t.Fatalf("reloaded %v, want %v", got, c.current())
	}
	if got := loadCurrent(p + ".missing"); !got.IsZero() {
		t.Fatalf("no file: %v", got)
	}
}
