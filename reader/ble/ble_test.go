package ble

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ble/ble"

	"lintel/reader"
	"lintel/reader/exchange"
)

func TestServiceUUID(t *testing.T) {
	// Golden: phones compute the same from the reader id; never change it.
	if got, want := ServiceUUID("front"), "14522bd0-375e-8c4d-9dd8-1de664bd18ab"; got != want {
		t.Fatalf("ServiceUUID(front) = %s, want %s", got, want)
	}
	if got, want := ServiceUUID("far"), "ba19cd0c-7ce7-87d8-8b6c-a4cc3764c3e6"; got != want {
		t.Fatalf("ServiceUUID(far) = %s, want %s", got, want)
	}
	seen := map[string]string{}
	for _, id := range []string{"front", "far", "Front", "front ", " front", "r1", "r2", "r10", strings.Repeat("x", 64)} {
		u := ServiceUUID(id)
		if u != ServiceUUID(id) {
			t.Fatalf("ServiceUUID(%q) is not stable", id)
		}
		if other, dup := seen[u]; dup {
			t.Fatalf("readers %q and %q share the service UUID %s", id, other, u)
		}
		seen[u] = id
		if len(u) != 36 || u[14] != '8' || !strings.ContainsRune("89ab", rune(u[19])) {
			t.Fatalf("%s: not a version 8, RFC 4122 variant UUID", u)
		}
		if b, err := ble.Parse(u); err != nil || b.Len() != 16 {
			t.Fatalf("go-ble cannot parse %s: %v", u, err)
		}
	}
	// The characteristics' UUIDs are what DESIGN.md says they were made from.
	if WriteCharUUID != DeriveUUID("lintel-ble\nphone-to-reader") || NotifyCharUUID != DeriveUUID("lintel-ble\nreader-to-phone") {
		t.Fatal("characteristic UUIDs do not match their derivation")
	}
	if seen[WriteCharUUID] != "" || seen[NotifyCharUUID] != "" || WriteCharUUID == NotifyCharUUID {
		t.Fatal("characteristic UUIDs collide")
	}
	// go-ble keeps UUIDs little-endian; the text form round-trips.
	if got := ble.MustParse(ServiceUUID("front")).String(); got != strings.ReplaceAll(ServiceUUID("front"), "-", "") {
		t.Fatalf("go-ble renders the service UUID as %s", got)
	}
}

func TestAdapterIndex(t *testing.T) {
	for name, want := range map[string]int{"hci0": 0, "hci1": 1, "hci12": 12, "hci65535": 65535} {
		if got, err := AdapterIndex(name); err != nil || got != want {
			t.Errorf("AdapterIndex(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"", "hci", "hci-1", "hci+1", "hci01", "usb0", "hci0 ", " hci0", "HCI0", "hci1x", "hci65536", "hci999999"} {
		if _, err := AdapterIndex(name); err == nil {
			t.Errorf("AdapterIndex(%q) accepted", name)
		}
	}
	if _, err := Open("bluetooth"); err == nil || !strings.Contains(err.Error(), "bad adapter name") {
		t.Fatalf("Open(bluetooth): %v", err)
	}
}

// On a machine with no Bluetooth, Open says what BLE readers need.
func TestOpenWithoutBluetooth(t *testing.T) {
	if ents, err := os.ReadDir("/sys/class/bluetooth"); err == nil && len(ents) > 0 {
		t.Skip("this machine has a Bluetooth adapter; the test does not take it over")
	}
	p, err := Open("hci0")
	if err == nil {
		p.Close()
		t.Fatal("opened hci0 on a machine without Bluetooth")
	}
	for _, want := range []string{"hci0", "HCI user channel", "CAP_NET_ADMIN", "CAP_NET_RAW", "bluetoothd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// echo is a fake Exchanger: it sends greeting, then echoes the frames it
// reads (frames of them; 0: until an error).
type echo struct {
	greeting []byte
	frames   int
	timeout  time.Duration
	ended    chan error

	mu     sync.Mutex
	active int
	most   int
	calls  []string
}

func newEcho(payload int) *echo {
	g, _ := exchange.AppendFrame(nil, exchange.Frame{Type: exchange.TypeChallenge, Payload: bytes.Repeat([]byte{'c'}, payload)})
	return &echo{greeting: g, timeout: 5 * time.Second, ended: make(chan error, 64)}
}

func (e *echo) Exchange(conn reader.Conn, readerID string) (err error) {
	e.mu.Lock()
	e.active++
	e.most = max(e.most, e.active)
	e.calls = append(e.calls, readerID)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.active--
		e.mu.Unlock()
		e.ended <- err
	}()
	conn.SetDeadline(time.Now().Add(e.timeout))
	if _, err := conn.Write(e.greeting); err != nil {
		return err
	}
	for i := 0; e.frames == 0 || i < e.frames; i++ {
		f, err := exchange.ReadFrame(conn)
		if err != nil {
			return err
		}
		if err := exchange.WriteFrame(conn, f); err != nil {
			return err
		}
	}
	return nil
}

func (e *echo) stats() (calls []string, most int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls), e.most
}

func (e *echo) waitEnded(t *testing.T) error {
	t.Helper()
	select {
	case err := <-e.ended:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the exchange did not end in 5 s")
		return nil
	}
}

// served starts a transport serving readers on fake adapters.
func served(t *testing.T, ex Exchanger, readers ...Reader) (*Transport, *fakeAdapters) {
	t.Helper()
	fa := newFakeAdapters()
	tr := New(ex, fa.open, nil)
	if err := tr.SetReaders(readers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, fa
}

func frameBytes(t *testing.T, typ exchange.Type, payload string) []byte {
	t.Helper()
	b, err := exchange.AppendFrame(nil, exchange.Frame{Type: typ, Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChunkingAndReassembly(t *testing.T) {
	e := newEcho(50)
	e.frames = 3
	_, fa := served(t, e, Reader{ID: "front", Adapter: "hci0"})
	c := newCentral(t, fa.dev("hci0").service("front"), 20)
	c.subscribe()
	if f := c.frame(); f.Type != exchange.TypeChallenge || len(f.Payload) != 50 {
		t.Fatalf("greeting %+v", f)
	}
	if got, want := c.n.notificationSizes(), []int{20, 20, 15}; !slices.Equal(got, want) {
		t.Fatalf("notification sizes %v, want %v", got, want)
	}
	// One frame across several small writes (the header split too) …
	a := frameBytes(t, exchange.TypePresentation, strings.Repeat("a", 40))
	c.writeSplit(a, 3)
	if f := c.frame(); f.Type != exchange.TypePresentation || string(f.Payload) != strings.Repeat("a", 40) {
		t.Fatalf("echo of a split frame: %+v", f)
	}
	// … and two frames in one write.
	two := append(frameBytes(t, exchange.TypeReceipt, "bb"), frameBytes(t, exchange.TypeReceipt, "ccc")...)
	if st := c.write(two); st != ble.ErrSuccess {
		t.Fatalf("write: %v", st)
	}
	if f := c.frame(); string(f.Payload) != "bb" {
		t.Fatalf("first of two frames: %+v", f)
	}
	if f := c.frame(); string(f.Payload) != "ccc" {
		t.Fatalf("second of two frames: %+v", f)
	}
	if err := e.waitEnded(t); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.n.notificationSizes() {
		if s > 20 {
			t.Fatalf("a notification of %d bytes, Cap 20", s)
		}
	}
	// The exchange is over: the handler returns, and writes are refused.
	c.waitServed()
	if st := c.write(a); st != StatusNotSubscribed {
		t.Fatalf("write after the exchange: %v", st)
	}
}

// go-ble's Notifier.Cap is 0 at the pinned version: the negotiated MTU
// stands in, and 20 bytes when nothing better is known.
func TestChunkFallback(t *testing.T) {
	for _, tc := range []struct {
		mtu  int
		want []int
	}{{185, []int{182, 123}}, {0, append(slices.Repeat([]int{20}, 15), 5)}, {23, append(slices.Repeat([]int{20}, 15), 5)}, {1000, []int{305}}} {
		e := newEcho(300)
		e.frames = 1
		_, fa := served(t, e, Reader{ID: "front", Adapter: "hci0"})
		c := newCentral(t, fa.dev("hci0").service("front"), 0)
		c.conn.mtu = tc.mtu
		c.subscribe()
		c.frame()
		if got := c.n.notificationSizes(); !slices.Equal(got, tc.want) {
			t.Errorf("MTU %d: notification sizes %v, want %v", tc.mtu, got, tc.want)
		}
		c.unsubscribe()
		e.waitEnded(t)
	}
}

func TestWriteNeedsSubscription(t *testing.T) {
	e := newEcho(10)
	e.frames = 1
	_, fa := served(t, e, Reader{ID: "front", Adapter: "hci0"})
	c := newCentral(t, fa.dev("hci0").service("front"), 20)
	if st := c.write(frameBytes(t, exchange.TypePresentation, "x")); st != StatusNotSubscribed {
		t.Fatalf("write before subscribing: status %v", st)
	}
	if calls, _ := e.stats(); len(calls) != 0 {
		t.Fatalf("an exchange ran without a subscription: %v", calls)
	}
	// Each subscription runs one exchange.
	for i := range 2 {
		c.subscribe()
		c.frame()
		c.writeSplit(frameBytes(t, exchange.TypePresentation, "x"), 20)
		c.frame()
		if err := e.waitEnded(t); err != nil {
			t.Fatal(err)
		}
		c.waitServed()
		if st := c.write([]byte("late")); st != StatusNotSubscribed {
			t.Fatalf("write after exchange %d: status %v", i, st)
		}
		c.unsubscribe()
	}
	if calls, _ := e.stats(); !slices.Equal(calls, []string{"front", "front"}) {
		t.Fatalf("exchanges %v", calls)
	}
}

func TestOneExchangePerCentral(t *testing.T) {
	e := newEcho(10)
	_, fa := served(t, e, Reader{ID: "front", Adapter: "hci0"})
	svc := fa.dev("hci0").service("front")
	c := newCentral(t, svc, 20)
	c.subscribe()
	c.frame()
	first := c.served
	// The same central subscribes again (go-ble would not call the handler
	// twice, a bug might): the first exchange ends.
	c.subscribe()
	if err := e.waitEnded(t); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("first exchange ended with %v", err)
	}
	<-first
	c.frame()
	// Another central at the same reader has its own exchange.
	d := newCentral(t, svc, 20)
	d.subscribe()
	d.frame()
	if _, most := e.stats(); most != 2 {
		t.Fatalf("%d exchanges at once, want 2 (one per central)", most)
	}
	// Each central's bytes reach its own exchange.
	d.writeSplit(frameBytes(t, exchange.TypeReceipt, "from d"), 20)
	c.writeSplit(frameBytes(t, exchange.TypeReceipt, "from c"), 20)
	if f := d.frame(); string(f.Payload) != "from d" {
		t.Fatalf("d got %q", f.Payload)
	}
	if f := c.frame(); string(f.Payload) != "from c" {
		t.Fatalf("c got %q", f.Payload)
	}
}

func TestUnsubscribeAndDisconnectEndTheExchange(t *testing.T) {
	for _, how := range []string{"unsubscribe", "disconnect"} {
		e := newEcho(10)
		e.timeout = time.Minute
		_, fa := served(t, e, Reader{ID: "front", Adapter: "hci0"})
		c := newCentral(t, fa.dev("hci0").service("front"), 20)
		c.subscribe()
		c.frame()
		c.write([]byte{exchange.Magic, exchange.FrameVersion}) // half a header
		if how == "unsubscribe" {
			c.unsubscribe()
		} else {
			c.conn.Close()
		}
		if err := e.waitEnded(t); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%s: exchange ended with %v", how, err)
		}
		c.waitServed()
	}
}

func TestReadDeadline(t *testing.T) {
	e := newEcho(10)
	e.timeout = 50 * time.Millisecond
	_, fa := served(t, e, Reader{ID: "front", Adapter: "hci0"})
	c := newCentral(t, fa.dev("hci0").service("front"), 20)
	c.subscribe()
	c.frame()
	err := e.waitEnded(t)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("silent central: %v, want a timeout", err)
	}
	c.waitServed()
}

// blocked is an Exchanger that greets, then reads nothing until released.
type blocked struct {
	release chan struct{}
	ended   chan error
}

func (b blocked) Exchange(conn reader.Conn, readerID string) error {
	conn.Write([]byte("hello"))
	<-b.release
	_, err := conn.Read(make([]byte, 1))
	b.ended <- err
	return err
}

func TestOverflowDisconnects(t *testing.T) {
	b := blocked{release: make(chan struct{}), ended: make(chan error, 1)}
	_, fa := served(t, b, Reader{ID: "front", Adapter: "hci0"})
	c := newCentral(t, fa.dev("hci0").service("front"), 20)
	c.subscribe()
	hello := make([]byte, 5)
	if _, err := io.ReadFull(c, hello); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0x4C}, 20)
	ok := 0
	for ; ok < 1000; ok++ {
		if st := c.write(chunk); st != ble.ErrSuccess {
			if st != StatusOverflow {
				t.Fatalf("write %d: status %v", ok, st)
			}
			break
		}
	}
	if ok != MaxPending/20 {
		t.Fatalf("%d writes of 20 bytes accepted, want %d", ok, MaxPending/20)
	}
	waitFor(t, c.conn.closed.Load)
	if st := c.write(chunk); st == ble.ErrSuccess {
		t.Fatal("a write accepted after the overflow")
	}
	close(b.release)
	if err := <-b.ended; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("exchange read after the overflow: %v", err)
	}
	c.waitServed()
}

func TestSetReaders(t *testing.T) {
	defer func(s time.Duration) { advertiseSlot = s }(advertiseSlot)
	advertiseSlot = 10 * time.Millisecond
	e := newEcho(10)
	e.timeout = time.Minute
	fa := newFakeAdapters()
	fa.fail["hci9"] = true
	tr := New(e, fa.open, nil)
	defer tr.Close()
	err := tr.SetReaders([]Reader{
		{ID: "a", Adapter: "hci0"}, {ID: "b", Adapter: "hci0"}, {ID: "c", Adapter: "hci1"},
		{ID: "d", Adapter: "hci9"}, {ID: "a", Adapter: "hci1"}, {ID: "", Adapter: "hci0"}, {ID: "bad\n", Adapter: "hci0"}, {ID: "e"},
	})
	for _, want := range []string{"readers d", "no such adapter hci9", "reader a listed twice", `bad reader id ""`, `bad reader id "bad\n"`, "reader e has no adapter"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SetReaders error %v does not say %q", err, want)
		}
	}
	h0, h1 := fa.dev("hci0"), fa.dev("hci1")
	if got := h0.readers("a", "b", "c"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("hci0 serves %v", got)
	}
	if got := h1.readers("a", "b", "c"); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("hci1 serves %v", got)
	}
	waitFor(t, func() bool { return h0.advertised("a") && h0.advertised("b") && h1.advertised("c") })

	// An exchange in flight at b, one at a.
	svcB := h0.service("b")
	cb := newCentral(t, svcB, 20)
	cb.subscribe()
	cb.frame()
	ca := newCentral(t, h0.service("a"), 20)
	ca.subscribe()
	ca.frame()

	// b and c go, f comes; hci9 works now.
	delete(fa.fail, "hci9")
	if err := tr.SetReaders([]Reader{{ID: "a", Adapter: "hci0"}, {ID: "f", Adapter: "hci0"}, {ID: "d", Adapter: "hci9"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.waitEnded(t); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the removed reader's exchange ended with %v", err)
	}
	cb.waitServed()
	if st := cb.write([]byte("x")); st != StatusNotSubscribed {
		t.Fatalf("write to a removed reader: %v", st)
	}
	// A central connected before still holds the old service: it is refused.
	old := newCentral(t, svcB, 20)
	old.subscribe()
	old.waitServed()
	if got := h0.readers("a", "b", "f"); !slices.Equal(got, []string{"a", "f"}) {
		t.Fatalf("hci0 serves %v after the change", got)
	}
	h1.mu.Lock()
	closed1 := h1.closed
	h1.mu.Unlock()
	if !closed1 {
		t.Fatal("hci1 serves no reader any more but was not closed")
	}
	if fa.opens["hci0"] != 1 || fa.opens["hci9"] != 2 {
		t.Fatalf("opens %v: hci0 once, hci9 retried once", fa.opens)
	}
	waitFor(t, func() bool { return fa.dev("hci9").advertised("d") && h0.advertised("f") })
	h0.mu.Lock()
	most := h0.advMax
	h0.mu.Unlock()
	if most != 1 {
		t.Fatalf("%d advertisements at once on hci0", most)
	}
	// a's exchange went on through the change, over the new services too.
	ca.writeSplit(frameBytes(t, exchange.TypeReceipt, "still here"), 20)
	if f := ca.frame(); string(f.Payload) != "still here" {
		t.Fatalf("a after the change: %q", f.Payload)
	}
	// The same list again changes nothing.
	sets := h0.sets
	if err := tr.SetReaders([]Reader{{ID: "d", Adapter: "hci9"}, {ID: "f", Adapter: "hci0"}, {ID: "a", Adapter: "hci0"}}); err != nil || h0.sets != sets {
		t.Fatalf("same readers again: %v, services set %d → %d times", err, sets, h0.sets)
	}

	// Close ends a's exchange and releases every adapter.
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.waitEnded(t); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a's exchange at Close: %v", err)
	}
	ca.waitServed()
	for _, name := range []string{"hci0", "hci9"} {
		d := fa.dev(name)
		d.mu.Lock()
		if !d.closed || d.advNow != 0 {
			t.Errorf("%s after Close: closed %v, advertising %d", name, d.closed, d.advNow)
		}
		d.mu.Unlock()
	}
	if err := tr.SetReaders([]Reader{{ID: "a", Adapter: "hci0"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetReaders after Close: %v", err)
	}
}

// Nothing a central writes makes the transport panic or hang.
func TestGarbageNeverPanics(t *testing.T) {
	e := newEcho(10)
	e.timeout = 20 * time.Millisecond
	e.ended = make(chan error, 1000)
	_, fa := served(t, e, Reader{ID: "front", Adapter: "hci0"})
	svc := fa.dev("hci0").service("front")
	base := runtime.NumGoroutine()
	rng := rand.New(rand.NewPCG(1, 2))
	subs := 0
	for range 200 {
		c := newCentral(t, svc, 1+rng.IntN(40))
		if rng.IntN(4) > 0 {
			c.subscribe()
			subs++
		}
		for range rng.IntN(20) {
			b := make([]byte, rng.IntN(700))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if rng.IntN(3) == 0 && len(b) >= 5 { // a plausible header now and then
				copy(b, []byte{exchange.Magic, exchange.FrameVersion, byte(1 + rng.IntN(6)), byte(rng.IntN(5)), byte(rng.Uint32())})
			}
			c.write(b)
		}
		switch rng.IntN(3) {
		case 0:
			c.unsubscribe()
		case 1:
			c.conn.Close()
		}
		if c.served != nil {
			c.n.Close()
			c.waitServed()
			for _, size := range c.n.notificationSizes() {
				if size > c.n.cap {
					t.Fatalf("a notification of %d bytes, Cap %d", size, c.n.cap)
				}
			}
		}
	}
	settled(t, base)
	if calls, most := e.stats(); len(calls) != subs || most != 1 || len(e.ended) != subs {
		t.Fatalf("%d subscriptions, %d exchanges (%d ended), %d at once", subs, len(calls), len(e.ended), most)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not met in 5 s")
}

// settled waits until at most n goroutines run.
func settled(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if runtime.NumGoroutine() <= n {
			return
		}
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
}
