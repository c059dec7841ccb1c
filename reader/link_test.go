package reader

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader/exchange"
)

type fixedView struct{ s *state.State }

func (v fixedView) Read(fn func(*state.State)) { fn(v.s) }

func startLink(t testing.TB, maxConns int) (*Link, *EventLog) {
	t.Helper()
	return startLinkWith(t, LinkConfig{Timeout: 300 * time.Millisecond, MaxConns: maxConns})
}

// startLinkWith starts a link with lc (its Controller filled in here).
func startLinkWith(t testing.TB, lc LinkConfig) (*Link, *EventLog) {
	t.Helper()
	events, err := OpenEventLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := &state.State{Readers: state.TableOf(map[string]state.Reader{
		"door-1":  {ID: "door-1", NodeID: "n1", SiteID: "s1", AccountID: "a1"},
		"other-1": {ID: "other-1", NodeID: "n2", SiteID: "s1", AccountID: "a1"},
	})}
	ctrl, err := NewController(Config{
		NodeID: "n1", View: fixedView{st}, Events: events, Timeout: 300 * time.Millisecond,
		Commit: func(context.Context, command.Command) error { return nil }, NewID: func() string { return "id" },
	})
	if err != nil {
		t.Fatal(err)
	}
	lc.Controller = ctrl
	l, err := Listen("127.0.0.1:0", lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); ctrl.Close(); events.Close() })
	return l, events
}

// hello dials, names the reader and returns the first frame.
func hello(t *testing.T, addr, readerID string) (net.Conn, *bufio.Reader, exchange.Frame) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(Hello(readerID))
	r := bufio.NewReader(c)
	f, err := exchange.ReadFrame(r)
	if err != nil {
		t.Fatalf("first frame: %v", err)
	}
	return c, r, f
}

func TestReaderLinkExchange(t *testing.T) {
	l, events := startLink(t, 8)
	// Another node's reader is refused before any challenge.
	c, _, f := hello(t, l.Addr(), "other-1")
	c.Close()
	var v exchange.Verdict
	if err := exchange.DecodeInto(f, &v); err != nil || v.Granted || v.Reason != exchange.ReasonWrongReader {
		t.Fatalf("other node's reader: %+v %v", v, err)
	}
	// An unknown card with a well-formed presentation: unknown_card.
	c, r, f := hello(t, l.Addr(), "door-1")
	defer c.Close()
	var ch exchange.Challenge
	if err := exchange.DecodeInto(f, &ch); err != nil || ch.ReaderID != "door-1" || ch.SiteID != "s1" {
		t.Fatalf("challenge: %+v %v", ch, err)
	}
	p, _ := exchange.Respond(ch, "card-x", func([]byte) ([]byte, error) { return []byte{0x30, 0x00}, nil })
	writeMsg(c, p)
	if err := readMsg(r, &v); err != nil || v.Reason != exchange.ReasonUnknownCard || v.Nonce != ch.Nonce {
		t.Fatalf("verdict: %+v %v", v, err)
	}
	evs, err := events.List(EventFilter{})
	if err != nil || len(evs) != 2 || evs[0].Reason != "wrong_reader" || evs[1].Reason != "unknown_card" || evs[1].ID != 2 {
		t.Fatalf("events: %+v %v", evs, err)
	}
	if evs, _ := events.List(EventFilter{SinceID: 1, ReaderID: "door-1", Result: "denied"}); len(evs) != 1 {
		t.Fatalf("filtered events: %+v", evs)
	}
}

func TestReaderLinkSilentPhoneTimesOut(t *testing.T) {
	l, _ := startLink(t, 8)
	c, r, _ := hello(t, l.Addr(), "door-1")
	defer c.Close()
	start := time.Now()
	// Say nothing: the node closes the connection after its read timeout.
	if _, err := exchange.ReadFrame(r); err != io.EOF {
		t.Fatalf("after silence: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %s", d)
	}
	checkServes(t, l)
}

func TestReaderLinkGarbageFrame(t *testing.T) {
	l, _ := startLink(t, 8)
	c, r, f := hello(t, l.Addr(), "door-1")
	defer c.Close()
	var ch exchange.Challenge
	exchange.DecodeInto(f, &ch)
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	var v exchange.Verdict
	if err := readMsg(r, &v); err != nil || v.Granted || v.Reason != exchange.ReasonBadSignature || v.Nonce != ch.Nonce {
		t.Fatalf("verdict after garbage: %+v %v", v, err)
	}
	// A garbage hello just closes.
	g, _ := net.Dial("tcp", l.Addr())
	g.Write([]byte{0x4c, 1, 2, 0xff, 0xff})
	g.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := g.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("garbage hello: %v", err)
	}
	g.Close()
	checkServes(t, l)
}

func TestReaderLinkFloodDoesNotStopServer(t *testing.T) {
	l, _ := startLink(t, 4)
	var conns []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// The silent flood times out; then the link serves again.
	eventually(t, func() bool {
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		c.Write(Hello("door-1"))
		_, err = exchange.ReadFrame(bufio.NewReader(c))
		return err == nil
	})
}

func checkServes(t *testing.T, l *Link) {
	t.Helper()
	c, _, f := hello(t, l.Addr(), "door-1")
	c.Close()
	if f.Type != exchange.TypeChallenge {
		t.Fatalf("first frame %s, want a challenge", f.Type)
	}
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("the link did not serve again")
}

func TestEventLogReopens(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenEventLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(Event{ReaderID: "r", Result: "granted"})
	l.Close()
	if l, err = OpenEventLog(dir); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, _ := l.Append(Event{ReaderID: "r", Result: "denied"})
	if e.ID != 2 {
		t.Fatalf("sequence after reopen: %d", e.ID)
	}
	if _, err := os.Stat(filepath.Join(dir, "events", "events.db")); err != nil {
		t.Fatal(err)
	}
}
