// Package reader is the reader controller of one node (SPEC 6): the reader
// link server, the door outputs and the local event log. The protocol is in
// reader/exchange and the rules in reader/decide.
package reader

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader/decide"
	"lintel/reader/exchange"
)

// HelloPrefix starts the line a phone sends first on the reader link to name
// the reader it stands at: "lintel-link 1 READER_ID\n". One link serves every
// reader of the node, so the node must learn which one before it challenges.
const HelloPrefix = "lintel-link 1 "

// maxHello bounds the hello line: the prefix, a 64-byte id and the newline.
const maxHello = len(HelloPrefix) + exchange.MaxIDLen + 1

// Defaults for LinkConfig.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxConns = 256
	commitTimeout   = 10 * time.Second
)

// View is the local replica, read under its read lock.
type View interface {
	Read(func(*state.State))
}

// Door drives a door output.
type Door interface {
	Unlock(readerID string, d time.Duration)
}

// LogDoor is the door driver with no hardware: it logs each unlock.
type LogDoor struct{ Log *slog.Logger }

// Unlock logs the unlock.
func (d LogDoor) Unlock(readerID string, dur time.Duration) {
	d.Log.Info("door unlocked", "reader", readerID, "for", dur)
}

// LinkConfig is what the reader link needs from the node.
type LinkConfig struct {
	NodeID string
	View   View
	// Commit commits a command made by reader readerID through the leader.
	Commit   func(ctx context.Context, readerID string, b command.Body) error
	Events   *EventLog
	Door     Door
	Log      *slog.Logger
	Timeout  time.Duration // per read from the phone
	MaxConns int
	Now      func() time.Time
}

// Link is the reader link server (SPEC 6.1 over TCP).
type Link struct {
	cfg   LinkConfig
	ln    net.Listener
	book  *exchange.NonceBook
	keys  *decide.KeyCache
	slots chan struct{}

	// ctx ends pending commits when the link closes, so Stop is not held up.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen starts serving the reader link on addr.
func Listen(addr string, cfg LinkConfig) (*Link, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Door == nil {
		cfg.Door = LogDoor{Log: cfg.Log}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--readers %s: %w", addr, err)
	}
	l := &Link{
		cfg: cfg, ln: ln,
		// A challenge is answered within one read timeout; the book only
		// needs to outlive that, and its size bounds memory under a flood.
		book:  exchange.NewNonceBook(2*cfg.Timeout, 4*cfg.MaxConns),
		keys:  decide.NewKeyCache(0),
		slots: make(chan struct{}, cfg.MaxConns),
		conns: map[net.Conn]struct{}{},
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

// Addr is the address the link listens on.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Close stops accepting, ends every open exchange and waits for them.
func (l *Link) Close() error {
	l.cancel()
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	err := l.ln.Close()
	l.wg.Wait()
	return err
}

func (l *Link) serve() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			l.cfg.Log.Warn("reader link accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case l.slots <- struct{}{}:
		default:
			// Full: refuse at once rather than queue, so a flood costs no memory.
			c.Close()
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			<-l.slots
			continue
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer func() {
				c.Close()
				l.mu.Lock()
				delete(l.conns, c)
				l.mu.Unlock()
				<-l.slots
				l.wg.Done()
			}()
			if err := l.handle(c); err != nil {
				l.cfg.Log.Debug("reader link exchange ended", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

// handle runs one exchange: hello, challenge, presentation, verdict and,
// after a delete instruction, the receipt.
func (l *Link) handle(c net.Conn) error {
	r := bufio.NewReaderSize(c, 2*exchange.MaxFrameSize)
	c.SetDeadline(l.cfg.Now().Add(l.cfg.Timeout))
	readerID, err := readHello(r)
	if err != nil {
		return err
	}
	var rd state.Reader
	var known bool
	l.cfg.View.Read(func(s *state.State) { rd, known = s.Readers[readerID] })
	if !known || rd.NodeID != l.cfg.NodeID {
		// Another node's reader or none: this node decides only for its own.
		// Only known readers are logged, so made-up ids cannot fill the log.
		if known {
			l.record(readerID, decide.Decision{Reason: string(exchange.ReasonWrongReader)})
		}
		return writeMsg(c, exchange.Verdict{Reason: exchange.ReasonWrongReader})
	}
	nonce, err := exchange.RandomNonces{}.Nonce()
	if err != nil {
		return err
	}
	if err := l.book.Issue(nonce, l.cfg.Now()); err != nil {
		return err
	}
	ch := exchange.Challenge{Version: exchange.ProtocolVersion, Nonce: nonce, ReaderID: readerID, SiteID: rd.SiteID}
	if err := writeMsg(c, ch); err != nil {
		return err
	}
	c.SetDeadline(l.cfg.Now().Add(l.cfg.Timeout))
	var p exchange.Presentation
	if err := readMsg(r, &p); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
			return err // a silent or departed phone: nothing to answer
		}
		d := decide.Decision{Reason: string(exchange.ReasonFor(err))}
		l.record(readerID, d)
		writeMsg(c, exchange.Verdict{Reason: exchange.Reason(d.Reason), Nonce: nonce})
		return err
	}
	var d decide.Decision
	var key []byte
	if err := l.book.Use(p.Nonce, l.cfg.Now()); err != nil {
		d = decide.Decision{Reason: string(exchange.ReasonFor(err)), CardID: p.CardID}
	} else {
		l.cfg.View.Read(func(s *state.State) {
			d = decide.Decide(s, readerID, ch, p, l.cfg.Now(), l.keys)
			if cd, ok := s.Cards[p.CardID]; ok && d.Delete && cd.Device != nil {
				key = append([]byte(nil), cd.Device.PublicKey...)
			}
		})
	}
	// max_uses: the use is committed through Raft before the door opens, so
	// the limit holds on every reader of every node. Without a quorum the
	// use cannot be counted, and the card is refused (fail closed).
	if d.Granted && d.UseCounted {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
		if err := l.cfg.Commit(ctx, readerID, &command.RecordUse{CardID: d.CardID, ReaderID: readerID}); err != nil {
			d.Granted, d.Reason = false, string(exchange.ReasonUsesExhausted)
		}
		cancel()
	}
	if d.Granted {
		l.cfg.Door.Unlock(readerID, time.Duration(rd.UnlockSeconds)*time.Second)
	}
	l.record(readerID, d)
	v := exchange.Verdict{Granted: d.Granted, Reason: exchange.Reason(d.Reason), Delete: d.Delete, Nonce: nonce}
	if err := writeMsg(c, v); err != nil || !d.Delete || key == nil {
		return err
	}
	c.SetDeadline(l.cfg.Now().Add(l.cfg.Timeout))
	var rc exchange.Receipt
	if err := readMsg(r, &rc); err != nil {
		return fmt.Errorf("no deletion receipt: %w", err)
	}
	if rc.CardID != d.CardID {
		return fmt.Errorf("receipt for card %s after presenting %s", rc.CardID, d.CardID)
	}
	if err := exchange.VerifyReceipt(rc, key); err != nil {
		return fmt.Errorf("deletion receipt for %s: %w", rc.CardID, err)
	}
	ctx, cancel := context.WithTimeout(l.ctx, commitTimeout)
	defer cancel()
	if err := l.cfg.Commit(ctx, readerID, &command.ConfirmRevoke{CardID: rc.CardID, Signature: rc.Signature}); err != nil {
		// The phone keeps the receipt until acknowledged and sends it again at check-in.
		l.cfg.Log.Warn("deletion receipt not committed", "reader", readerID, "card", rc.CardID, "err", err)
		return err
	}
	c.SetDeadline(l.cfg.Now().Add(l.cfg.Timeout))
	// Echoing the receipt acknowledges that the revoke is committed.
	return writeMsg(c, rc)
}

// record appends the decision to the event log; a failure is logged, never
// turned into a denial (the door decision is already made).
func (l *Link) record(readerID string, d decide.Decision) {
	e := Event{
		Time: l.cfg.Now().UTC(), NodeID: l.cfg.NodeID, ReaderID: readerID, CardID: d.CardID,
		Cardholder: d.CardholderName, Result: "denied", Reason: d.Reason,
	}
	if d.Granted {
		e.Result = "granted"
	}
	if l.cfg.Events == nil {
		return
	}
	if _, err := l.cfg.Events.Append(e); err != nil {
		l.cfg.Log.Error("event log append", "err", err)
	}
}

func readHello(r *bufio.Reader) (string, error) {
	var line []byte
	for len(line) < maxHello {
		b, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if b == '\n' {
			s := string(line)
			if !strings.HasPrefix(s, HelloPrefix) {
				return "", errors.New("reader link: bad hello line")
			}
			id := strings.TrimPrefix(s, HelloPrefix)
			if id == "" || len(id) > exchange.MaxIDLen || strings.IndexFunc(id, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
				return "", errors.New("reader link: bad reader id in hello")
			}
			return id, nil
		}
		line = append(line, b)
	}
	return "", errors.New("reader link: hello line too long")
}

// outgoing is a message by value (Encode wants the pointer-method set).
type outgoing interface {
	Type() exchange.Type
	Marshal() ([]byte, error)
}

func writeMsg(c net.Conn, m outgoing) error {
	p, err := m.Marshal()
	if err != nil {
		return err
	}
	return exchange.WriteFrame(c, exchange.Frame{Type: m.Type(), Payload: p})
}

func readMsg(r *bufio.Reader, m exchange.Message) error {
	f, err := exchange.ReadFrame(r)
	if err != nil {
		return err
	}
	return exchange.DecodeInto(f, m)
}

// Hello is the first line a phone sends for readerID.
func Hello(readerID string) []byte { return []byte(HelloPrefix + readerID + "\n") }
