package console

import (
	"testing"

	"lintel/consensus/state"
)

// A browser that does not keep up is dropped, not waited for: Publish never
// blocks, and the connection's writer sees that it fell behind.
func TestHubDropsASlowBrowser(t *testing.T) {
	h := NewHub()
	slow := &liveClient{session: "s", wake: make(chan struct{}, 1)}
	if !h.add(slow) {
		t.Fatal("add")
	}
	batch := make([]state.Change, 100)
	for range livePending/len(batch) + 1 {
		h.Publish(batch) // must return at once although nobody reads
	}
	changes, over := h.take(slow)
	if !over {
		t.Fatalf("%d changes waiting and not dropped", len(changes))
	}
	if len(changes) > livePending {
		t.Fatalf("%d changes held for one browser (limit %d)", len(changes), livePending)
	}
	// Once taken, a new round starts clean.
	h.Publish(batch)
	if changes, over := h.take(slow); over || len(changes) != len(batch) {
		t.Fatalf("after a take: %d changes, over %v", len(changes), over)
	}
}

func TestHubLimitsConnections(t *testing.T) {
	h := NewHub()
	for i := range livePerSession {
		if !h.add(&liveClient{session: "a", wake: make(chan struct{}, 1)}) {
			t.Fatalf("tab %d refused", i)
		}
	}
	if h.add(&liveClient{session: "a", wake: make(chan struct{}, 1)}) {
		t.Fatal("one tab past the session's limit accepted")
	}
	if !h.add(&liveClient{session: "b", wake: make(chan struct{}, 1)}) {
		t.Fatal("another session refused")
	}
}
