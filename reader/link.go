// Package reader is the reader controller of one node (SPEC 6): the
// controller that runs exchanges, the transports (the TCP reader link, BLE),
// the door outputs and the local event log with the offline queue. The
// protocol is in reader/exchange and the rules in reader/decide.
package reader

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"lintel/consensus/state"
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

// LinkConfig is what the reader link needs.
type LinkConfig struct {
	Controller *Controller
	Log        *slog.Logger
	Timeout    time.Duration // for the hello line
	MaxConns   int
}

// Link is the reader link server (SPEC 6.1 over TCP).
type Link struct {
	cfg   LinkConfig
	ln    net.Listener
	slots chan struct{}

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
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--readers %s: %w", addr, err)
	}
	l := &Link{
		cfg: cfg, ln: ln,
		slots: make(chan struct{}, cfg.MaxConns),
		conns: map[net.Conn]struct{}{},
	}
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

// Addr is the address the link listens on.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Close stops accepting, ends every open exchange and waits for them.
func (l *Link) Close() error {
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

// handle reads the hello line naming the reader, then hands the
// connection to the controller for one exchange.
func (l *Link) handle(c net.Conn) error {
	r := bufio.NewReaderSize(c, 2*exchange.MaxFrameSize)
	c.SetDeadline(time.Now().Add(l.cfg.Timeout))
	readerID, err := readHello(r)
	if err != nil {
		return err
	}
	return l.cfg.Controller.Exchange(bufferedConn{Reader: r, Conn: c}, readerID)
}

// bufferedConn reads through the buffer that read the hello line.
type bufferedConn struct {
	*bufio.Reader
	net.Conn
}

func (b bufferedConn) Read(p []byte) (int, error) { return b.Reader.Read(p) }

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

func writeMsg(c io.Writer, m outgoing) error {
	p, err := m.Marshal()
	if err != nil {
		return err
	}
	return exchange.WriteFrame(c, exchange.Frame{Type: m.Type(), Payload: p})
}

func readMsg(r io.Reader, m exchange.Message) error {
	f, err := exchange.ReadFrame(r)
	if err != nil {
		return err
	}
	return exchange.DecodeInto(f, m)
}

// Hello is the first line a phone sends for readerID.
func Hello(readerID string) []byte { return []byte(HelloPrefix + readerID + "\n") }
