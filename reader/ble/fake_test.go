package ble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ble/ble"

	"lintel/reader/exchange"
)

// fakePeripheral is a Peripheral that remembers what it was given.
type fakePeripheral struct {
	name string

	mu       sync.Mutex
	services []*ble.Service
	sets     int
	adv      map[string]bool // service UUIDs advertised so far
	advNow   int             // Advertise calls in progress
	advMax   int             // most Advertise calls in progress at once
	closed   bool
}

func (p *fakePeripheral) SetServices(s []*ble.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.services = s
	p.sets++
	return nil
}

func (p *fakePeripheral) Advertise(ctx context.Context, name string, uuids []ble.UUID) error {
	p.mu.Lock()
	for _, u := range uuids {
		p.adv[u.String()] = true
	}
	p.advNow++
	p.advMax = max(p.advMax, p.advNow)
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.advNow--
	p.mu.Unlock()
	return ctx.Err()
}

func (p *fakePeripheral) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// service finds the GATT service of readerID among those last set.
func (p *fakePeripheral) service(readerID string) *ble.Service {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := ble.MustParse(ServiceUUID(readerID))
	for _, s := range p.services {
		if s.UUID.Equal(want) {
			return s
		}
	}
	return nil
}

// readers are the reader ids whose services were last set, in order.
func (p *fakePeripheral) readers(ids ...string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range p.services {
		for _, id := range ids {
			if s.UUID.Equal(ble.MustParse(ServiceUUID(id))) {
				out = append(out, id)
			}
		}
	}
	return out
}

func (p *fakePeripheral) advertised(readerID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.adv[ble.MustParse(ServiceUUID(readerID)).String()]
}

// fakeAdapters opens fake peripherals; names in fail cannot be opened.
type fakeAdapters struct {
	mu    sync.Mutex
	devs  map[string]*fakePeripheral
	opens map[string]int
	fail  map[string]bool
}

func newFakeAdapters() *fakeAdapters {
	return &fakeAdapters{devs: map[string]*fakePeripheral{}, opens: map[string]int{}, fail: map[string]bool{}}
}

func (f *fakeAdapters) open(name string) (Peripheral, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens[name]++
	if f.fail[name] {
		return nil, fmt.Errorf("no such adapter %s", name)
	}
	p := &fakePeripheral{name: name, adv: map[string]bool{}}
	f.devs[name] = p
	return p, nil
}

func (f *fakeAdapters) dev(name string) *fakePeripheral {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devs[name]
}

// The go-ble interfaces the handlers see, implemented as far as used.

type fakeConn struct {
	ble.Conn
	mtu    int
	gone   chan struct{}
	once   sync.Once
	closed atomic.Bool
}

func newFakeConn() *fakeConn { return &fakeConn{gone: make(chan struct{})} }

func (c *fakeConn) Disconnected() <-chan struct{} { return c.gone }
func (c *fakeConn) TxMTU() int                    { return c.mtu }
func (c *fakeConn) RemoteAddr() ble.Addr          { return ble.NewAddr("5e:00:00:00:00:01") }
func (c *fakeConn) Close() error {
	c.closed.Store(true)
	c.once.Do(func() { close(c.gone) })
	return nil
}

type fakeRequest struct {
	ble.Request
	conn ble.Conn
	data []byte
}

func (r fakeRequest) Conn() ble.Conn { return r.conn }
func (r fakeRequest) Data() []byte   { return r.data }
func (r fakeRequest) Offset() int    { return 0 }

type fakeResponse struct {
	ble.ResponseWriter
	status ble.ATTError
}

func (r *fakeResponse) SetStatus(s ble.ATTError) { r.status = s }
func (r *fakeResponse) Status() ble.ATTError     { return r.status }

type fakeNotifier struct {
	ble.Notifier
	ctx    context.Context
	cancel context.CancelFunc
	cap    int
	out    chan []byte

	mu    sync.Mutex
	sizes []int // of every notification sent
}

func newFakeNotifier(cap int) *fakeNotifier {
	n := &fakeNotifier{cap: cap, out: make(chan []byte, 4096)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

func (n *fakeNotifier) Context() context.Context { return n.ctx }
func (n *fakeNotifier) Cap() int                 { return n.cap }
func (n *fakeNotifier) Close() error             { n.cancel(); return nil }

func (n *fakeNotifier) Write(b []byte) (int, error) {
	if n.ctx.Err() != nil {
		return 0, io.ErrClosedPipe
	}
	n.mu.Lock()
	n.sizes = append(n.sizes, len(b))
	n.mu.Unlock()
	select {
	case n.out <- slices.Clone(b):
		return len(b) + 3, nil // as go-ble: the ATT header is counted
	case <-n.ctx.Done():
		return 0, io.ErrClosedPipe
	}
}

func (n *fakeNotifier) notificationSizes() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sizes)
}

// central is a phone connected to one reader's service: it drives the
// handlers registered in the *ble.Service as go-ble would.
type central struct {
	t      *testing.T
	conn   *fakeConn
	n      *fakeNotifier
	writer ble.WriteHandler
	notify ble.NotifyHandler
	served chan struct{} // closed when the notify handler returns
	rest   []byte        // notified, not yet read
}

func newCentral(t *testing.T, svc *ble.Service, cap int) *central {
	t.Helper()
	if svc == nil {
		t.Fatal("no such service")
	}
	c := &central{t: t, conn: newFakeConn(), n: newFakeNotifier(cap)}
	for _, ch := range svc.Characteristics {
		switch {
		case ch.UUID.Equal(writeChar):
			c.writer = ch.WriteHandler
			if ch.Property&(ble.CharWrite|ble.CharWriteNR) != ble.CharWrite|ble.CharWriteNR {
				t.Errorf("write characteristic properties %#x", ch.Property)
			}
		case ch.UUID.Equal(notifyChar):
			c.notify = ch.NotifyHandler
			if ch.Property != ble.CharNotify {
				t.Errorf("notify characteristic properties %#x", ch.Property)
			}
		}
	}
	if c.writer == nil || c.notify == nil {
		t.Fatalf("service %s lacks its characteristics", svc.UUID)
	}
	return c
}

// subscribe writes the CCCD: go-ble runs the notify handler in a goroutine.
func (c *central) subscribe() {
	served, n := make(chan struct{}), newFakeNotifier(c.n.cap)
	c.served, c.n = served, n
	go func() {
		c.notify.ServeNotify(fakeRequest{conn: c.conn, data: []byte{1, 0}}, n)
		close(served)
	}()
}

func (c *central) unsubscribe() { c.n.Close() }

// write is one ATT write; the buffer is scribbled over afterwards, as
// go-ble reuses its buffers.
func (c *central) write(b []byte) ble.ATTError {
	buf := slices.Clone(b)
	rsp := &fakeResponse{}
	c.writer.ServeWrite(fakeRequest{conn: c.conn, data: buf}, rsp)
	for i := range buf {
		buf[i] = 0xEE
	}
	return rsp.status
}

// writeSplit writes b in writes of at most size bytes.
func (c *central) writeSplit(b []byte, size int) {
	c.t.Helper()
	for len(b) > 0 {
		k := min(size, len(b))
		if st := c.write(b[:k]); st != ble.ErrSuccess {
			c.t.Fatalf("write refused: %v", st)
		}
		b = b[k:]
	}
}

// Read reads the notified bytes as a stream.
func (c *central) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		select {
		case b := <-c.n.out:
			c.rest = b
		case <-time.After(5 * time.Second):
			return 0, errors.New("no notification in 5 s")
		}
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

func (c *central) frame() exchange.Frame {
	c.t.Helper()
	f, err := exchange.ReadFrame(c)
	if err != nil {
		c.t.Fatalf("reading a frame from the notifications: %v", err)
	}
	return f
}

func (c *central) waitServed() {
	c.t.Helper()
	select {
	case <-c.served:
	case <-time.After(5 * time.Second):
		c.t.Fatal("the notify handler did not return in 5 s")
	}
}
