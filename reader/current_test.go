package reader

import (
	"testing"
	"time"

	"lintel/reader/exchange"
)

// A node that hears its leader but applies nothing (a full disk) is not
// current: past the offline grace its doors follow the offline policy,
// although it has a quorum. The door used to ask only for the quorum.
func TestConnectedButNotApplyingFollowsOfflinePolicy(t *testing.T) {
	f := newFixture(t)
	p := f.card("c1", 0)
	since := time.Now().Add(-time.Hour)
	f.stale.Store(&since)
	if r := f.present("front", "c1", p); !r.v.Granted {
		t.Fatalf("stale for less than the grace: %+v", r.v)
	}
	since = time.Now().Add(-25 * time.Hour)
	f.stale.Store(&since)
	if ok, _ := f.ctrl.cfg.Quorum(); !ok {
		t.Fatal("the fixture should have a quorum here")
	}
	if r := f.present("front", "c1", p); r.v.Granted || r.v.Reason != exchange.ReasonOffline {
		t.Fatalf("connected, not applying for 25 h, policy deny: %+v", r.v)
	}
}

// An event the log refuses is held, counted and written later, never lost
// silently; while the log refuses events the node is not current.
func TestUnwritableEventIsHeldAndMakesTheNodeStale(t *testing.T) {
	f := newFixture(t)
	p := f.card("c1", 0)
	f.events.Close() // every append fails now, as on a failing disk
	if r := f.present("front", "c1", p); !r.v.Granted {
		t.Fatalf("the decision stands when its event cannot be written: %+v", r.v)
	}
	n, failing := f.ctrl.Unwritten()
	if n != 1 || failing.IsZero() {
		t.Fatalf("held %d events, failing since %v; want 1 held", n, failing)
	}
	if ok, _ := f.ctrl.current(); ok {
		t.Fatal("current while its event log refuses events")
	}
	// Refusing for longer than the grace: the offline policy applies.
	f.ctrl.mu.Lock()
	f.ctrl.failingSince = time.Now().Add(-25 * time.Hour)
	f.ctrl.mu.Unlock()
	if r := f.present("front", "c1", p); r.v.Granted || r.v.Reason != exchange.ReasonOffline {
		t.Fatalf("event log refusing for 25 h: %+v", r.v)
	}
	// The disk has room again: the held events are written, in order.
	ev, err := OpenEventLog(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	// Swapped under the controller's lock while the drain loop has no quorum
	// to act on, so nothing reads the old log concurrently.
	f.noQ.Store(true)
	time.Sleep(2 * drainEvery)
	f.ctrl.mu.Lock()
	f.ctrl.cfg.Events = ev
	f.ctrl.mu.Unlock()
	f.events = ev
	f.noQ.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, failing := f.ctrl.Unwritten(); n == 0 && failing.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("held events not written after the log came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := ev.List(EventFilter{CardID: "c1"})
	if err != nil || len(got) < 2 || got[len(got)-2].Result != "granted" || got[len(got)-1].Reason != string(exchange.ReasonOffline) {
		t.Fatalf("events after the log came back: %+v %v", got, err)
	}
}
