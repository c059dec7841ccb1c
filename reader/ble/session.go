package ble

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-ble/ble"
)

// Chunk sizes of notifications: an ATT notification carries ATT_MTU − 3
// bytes; 23 is the default ATT_MTU and 515 go-ble's largest.
const (
	minChunk = ble.DefaultMTU - 3
	maxChunk = ble.MaxMTU - 3
)

// Why a session ends. Each wraps net.ErrClosed, so the controller treats
// them as a departed phone and does not try to answer.
var (
	errEnded    = fmt.Errorf("ble: exchange ended (unsubscribed, disconnected or reader removed): %w", net.ErrClosed)
	errReplaced = fmt.Errorf("ble: the central subscribed again: %w", net.ErrClosed)
	errOverflow = fmt.Errorf("ble: central wrote more than %d bytes ahead of the exchange: %w", MaxPending, net.ErrClosed)
)

// service is one reader's GATT service on one adapter and the centrals
// subscribed to it.
type service struct {
	t        *Transport
	readerID string
	uuid     ble.UUID

	mu      sync.Mutex
	stopped bool
	done    chan struct{}         // closed by stop
	links   map[ble.Conn]*session // the exchange in flight, by central
}

func newService(t *Transport, readerID string) *service {
	return &service{
		t: t, readerID: readerID, uuid: ble.MustParse(ServiceUUID(readerID)),
		done: make(chan struct{}), links: map[ble.Conn]*session{},
	}
}

// gatt makes a new *ble.Service for s: the write and the notify
// characteristic, bound to s's handlers.
func (s *service) gatt() *ble.Service {
	svc := ble.NewService(s.uuid)
	svc.NewCharacteristic(writeChar).HandleWrite(ble.WriteHandlerFunc(s.serveWrite))
	svc.NewCharacteristic(notifyChar).HandleNotify(ble.NotifyHandlerFunc(s.serveNotify))
	return svc
}

// stop ends s's exchanges; s refuses new subscriptions and writes.
func (s *service) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.done)
	}
}

// serveNotify runs when a central subscribes to the notify characteristic
// (go-ble calls it in a goroutine of its own). The reader speaks first, so
// the subscription starts the exchange: its challenge is the first
// notification. It returns when the exchange is over, the central
// unsubscribes or disconnects, or the reader stops being served: one
// exchange per subscription.
func (s *service) serveNotify(req ble.Request, n ble.Notifier) {
	conn := req.Conn()
	if conn == nil || n == nil {
		return
	}
	x := &session{n: n, chunk: chunkSize(n, conn), wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	if old := s.links[conn]; old != nil {
		old.end(errReplaced) // one exchange at a time per central
	}
	s.links[conn] = x
	s.t.wg.Add(1)
	s.mu.Unlock()
	defer s.t.wg.Done()

	log := s.t.log.With("reader", s.readerID, "central", remote(conn))
	go func() {
		defer close(x.done)
		defer func() {
			if p := recover(); p != nil {
				log.Error("ble exchange panicked", "panic", p)
			}
		}()
		err := s.t.ex.Exchange(x, s.readerID)
		log.Debug("ble exchange ended", "err", err)
	}()
	select {
	case <-x.done:
	case <-n.Context().Done():
	case <-conn.Disconnected():
	case <-s.done:
	}
	x.end(errEnded)
	<-x.done
	s.mu.Lock()
	if s.links[conn] == x {
		delete(s.links, conn)
	}
	s.mu.Unlock()
}

// serveWrite takes a write to the write characteristic: its bytes go to
// the exchange of this central, whatever frame boundaries they cut. go-ble
// calls it on the connection's ATT loop, so it never blocks.
func (s *service) serveWrite(req ble.Request, rsp ble.ResponseWriter) {
	conn := req.Conn()
	s.mu.Lock()
	x := s.links[conn]
	s.mu.Unlock()
	if x == nil {
		rsp.SetStatus(StatusNotSubscribed)
		return
	}
	st := x.feed(req.Data())
	rsp.SetStatus(st)
	if st == StatusOverflow {
		s.t.log.Warn("ble central wrote too far ahead; disconnecting", "reader", s.readerID, "central", remote(conn))
		// Not on the ATT loop: go-ble's disconnect waits for the HCI event loop.
		go conn.Close()
	}
}

// chunkSize is the largest notification n can carry. go-ble at the pinned
// version returns 0 from Notifier.Cap, so the ATT MTU the central
// negotiated (known when it subscribes, which is after the MTU exchange)
// stands in for it; go-ble would silently truncate anything longer.
func chunkSize(n ble.Notifier, conn ble.Conn) int {
	if c := n.Cap(); c > 0 {
		return min(c, maxChunk)
	}
	return min(max(conn.TxMTU()-3, minChunk), maxChunk)
}

func remote(conn ble.Conn) string {
	if a := conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// session is the reader.Conn of one exchange: reads take what the central
// wrote, with deadlines; writes go out as notifications.
type session struct {
	n     ble.Notifier
	chunk int

	mu       sync.Mutex
	buf      []byte // written by the central, not yet read
	err      error  // set when the session ends
	deadline time.Time
	wake     chan struct{} // a reader waiting for data is woken here
	done     chan struct{} // closed when the exchange returns
}

// feed appends what the central wrote and answers the ATT status.
func (x *session) feed(b []byte) ble.ATTError {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		return StatusNotSubscribed
	}
	select {
	case <-x.done:
		return StatusNotSubscribed
	default:
	}
	if len(x.buf)+len(b) > MaxPending {
		x.endLocked(errOverflow)
		return StatusOverflow
	}
	x.buf = append(x.buf, b...) // a copy: go-ble reuses b
	x.signal()
	return ble.ErrSuccess
}

func (x *session) end(err error) {
	x.mu.Lock()
	x.endLocked(err)
	x.mu.Unlock()
}

func (x *session) endLocked(err error) {
	if x.err == nil {
		x.err = err
		x.buf = nil
	}
	x.signal()
}

func (x *session) signal() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// Read reads what the central wrote. It fails once the session has ended,
// and with os.ErrDeadlineExceeded (a net.Error whose Timeout is true) past
// the deadline.
func (x *session) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		x.mu.Lock()
		if x.err != nil {
			err := x.err
			x.mu.Unlock()
			return 0, err
		}
		if len(x.buf) > 0 {
			n := copy(p, x.buf)
			x.buf = x.buf[n:]
			if len(x.buf) == 0 {
				x.buf = nil
			}
			x.mu.Unlock()
			return n, nil
		}
		dl := x.deadline
		x.mu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			expired = timer.C
		}
		select {
		case <-x.wake:
		case <-expired: // checked again above: the deadline may have moved
		}
	}
}

// Write sends p to the central as notifications of at most chunk bytes.
func (x *session) Write(p []byte) (int, error) {
	sent := 0
	for len(p) > 0 {
		x.mu.Lock()
		err := x.err
		x.mu.Unlock()
		if err != nil {
			return sent, err
		}
		if x.n.Context().Err() != nil {
			return sent, errEnded
		}
		c := min(len(p), x.chunk)
		// go-ble counts the ATT header in n: only the error tells.
		if _, err := x.n.Write(p[:c]); err != nil {
			return sent, errors.Join(errEnded, err)
		}
		sent += c
		p = p[c:]
	}
	return sent, nil
}

// SetDeadline sets the deadline of reads; writes are notifications, which
// go-ble sends without one.
func (x *session) SetDeadline(t time.Time) error {
	x.mu.Lock()
	x.deadline = t
	x.mu.Unlock()
	x.signal()
	return nil
}
