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

	"golang.org/x/time/rate"

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
	// DefaultMaxPerAddr bounds one host's exchanges at once: a network
	// reader or a gateway runs a few, a flood from one host no more.
	DefaultMaxPerAddr = 32
	// Connections one host may open a second (and at once): past them a
	// new one is closed before it costs a goroutine. A busy gateway opens
	// tens a second; the bound is on the CPU a churn costs.
	addrRate  = 1000
	addrBurst = 1000
	// idleAfter: a connection that has not named its reader this long after
	// it was accepted is not a phone's, and is the first to give its place.
	idleAfter     = 250 * time.Millisecond
	commitTimeout = 10 * time.Second
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
	MaxPerAddr int
}

// Link is the reader link server (SPEC 6.1 over TCP).
//
// Admission is fair between hosts (an IPv6 host is its /64): one host
// holds at most MaxPerAddr exchanges and opens at most addrRate
// connections a second; when all MaxConns are taken, a newcomer takes the
// place of a connection that has not named its reader yet (a phone names
// it at once; a flood's idle connections never do), the oldest of the host
// holding the most, if that host holds at least as many as the newcomer's;
// when every place is an exchange under way, the oldest of the host holding
// the most gives its place if that host holds more than the newcomer's
// share (its own and one). So a host that floods the link competes with
// itself, whether its connections stay silent or name a reader and stall,
// and a phone from anywhere else still gets in.
type Link struct {
	cfg LinkConfig
	ln  net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]string      // → the host it came from
	named  map[net.Conn]bool        // it named its reader: its exchange is under way
	since  map[net.Conn]time.Time   // when it was accepted
	byAddr map[string][]net.Conn    // a host's connections, oldest first
	rates  map[string]*rate.Limiter // a host's connection rate
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
	if cfg.MaxPerAddr <= 0 {
		cfg.MaxPerAddr = min(DefaultMaxPerAddr, cfg.MaxConns)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--readers %s: %w", addr, err)
	}
	l := &Link{cfg: cfg, ln: ln, conns: map[net.Conn]string{}, named: map[net.Conn]bool{}, since: map[net.Conn]time.Time{}, byAddr: map[string][]net.Conn{}, rates: map[string]*rate.Limiter{}}
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
		addr := hostOf(c.RemoteAddr())
		if !l.admit(c, addr) {
			c.Close()
			continue
		}
		go func() {
			defer func() {
				c.Close()
				l.leave(c)
				l.wg.Done()
			}()
			if err := l.handle(c); err != nil {
				l.cfg.Log.Debug("reader link exchange ended", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

// admit takes c in, or says no: refused at once rather than queued, so a
// flood costs no memory.
func (l *Link) admit(c net.Conn, addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	lim, ok := l.rates[addr]
	if !ok {
		if len(l.rates) >= 10_000 {
			l.rates = map[string]*rate.Limiter{} // a spray of addresses: start again
		}
		lim = rate.NewLimiter(addrRate, addrBurst)
		l.rates[addr] = lim
	}
	mine := len(l.byAddr[addr])
	if !lim.Allow() || mine >= l.cfg.MaxPerAddr {
		return false
	}
	if len(l.conns) >= l.cfg.MaxConns {
		var victim net.Conn
		most := -1
		// A connection silent for idleAfter is not a phone (a phone names
		// its reader at once): it gives its place first, from any host.
		stale := time.Now().Add(-idleAfter)
		for _, cs := range l.byAddr {
			if len(cs) <= most {
				continue
			}
			for _, x := range cs {
				if !l.named[x] && l.since[x].Before(stale) {
					victim, most = x, len(cs)
					break
				}
			}
		}
		for _, cs := range l.byAddr {
			if victim != nil {
				break
			}
			if len(cs) < mine || len(cs) <= most {
				continue // a host holding fewer than the newcomer's keeps its places
			}
			for _, x := range cs { // oldest first
				if !l.named[x] {
					victim, most = x, len(cs)
					break
				}
			}
		}
		if victim == nil {
			// Every place is an exchange under way. A host holding more than
			// its share (the newcomer's and one) still gives its oldest: a
			// flood that names a reader and then stalls is an exchange too.
			for _, cs := range l.byAddr {
				if len(cs) > max(mine+1, most) {
					victim, most = cs[0], len(cs)
				}
			}
		}
		if victim == nil {
			return false // every host holds its share: the newcomer waits its turn
		}
		l.remove(victim)
		victim.Close() // its goroutine ends; leave finds it gone
	}
	l.conns[c] = addr
	l.since[c] = time.Now()
	l.byAddr[addr] = append(l.byAddr[addr], c)
	l.wg.Add(1)
	return true
}

func (l *Link) leave(c net.Conn) {
	l.mu.Lock()
	l.remove(c)
	l.mu.Unlock()
}

// remove forgets c (under mu); a connection already removed is left alone.
func (l *Link) remove(c net.Conn) {
	addr, ok := l.conns[c]
	if !ok {
		return
	}
	delete(l.conns, c)
	delete(l.named, c)
	delete(l.since, c)
	cs := l.byAddr[addr]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(l.byAddr, addr)
	} else {
		l.byAddr[addr] = cs
	}
}

// hostOf is the host a limit counts for a remote address: its IP, or for
// IPv6 its /64 (one host or one network hands out as many as it likes).
func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
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
	l.mu.Lock()
	_, ours := l.conns[c]
	if ours {
		l.named[c] = true
	}
	l.mu.Unlock()
	if !ours {
		return errors.New("reader link: the place was given to another phone")
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
