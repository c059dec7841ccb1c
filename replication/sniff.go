package replication

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// sniffTransport is memberlist's own TCP and UDP transport with one
// addition: a TCP connection to the gossip port whose first byte opens a
// TLS handshake (0x16; no memberlist message type is that high) goes to the
// join exchange instead of memberlist. A new node is given only gossip
// addresses (--join), so that is where it asks to be let in.
type sniffTransport struct {
	*memberlist.NetTransport
	streams chan net.Conn
	onJoin  func(net.Conn)
	done    chan struct{}
	once    sync.Once
	sem     chan struct{} // connections being routed (or joined) at once
	mu      sync.Mutex
	perHost map[string]int
}

// At most maxRouting connections are read or joined at once, maxRoutingPerHost
// of one host; a connection must send its first byte within a second.
const (
	maxRouting        = 1024
	maxRoutingPerHost = 64
)

const tlsHandshakeRecord = 0x16

func newSniffTransport(mc *memberlist.Config, onJoin func(net.Conn)) (*sniffTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger}
	var nt *memberlist.NetTransport
	var err error
	// Port 0 binds TCP and UDP on one kernel-chosen port, which can race
	// (memberlist retries the same way).
	for try := 0; try < 10; try++ {
		if nt, err = memberlist.NewNetTransport(nc); err == nil || mc.BindPort != 0 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		mc.AdvertisePort = mc.BindPort
	}
	t := &sniffTransport{NetTransport: nt, streams: make(chan net.Conn), onJoin: onJoin, done: make(chan struct{}), sem: make(chan struct{}, maxRouting), perHost: map[string]int{}}
	go t.loop()
	return t, nil
}

func (t *sniffTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *sniffTransport) loop() {
	in := t.NetTransport.StreamCh()
	for {
		select {
		case c := <-in:
			host := hostOf(c.RemoteAddr())
			t.mu.Lock()
			full := t.perHost[host] >= maxRoutingPerHost
			if !full {
				t.perHost[host]++
			}
			t.mu.Unlock()
			if full {
				c.Close() // one host's flood: it waits, the others go on
				continue
			}
			select {
			case t.sem <- struct{}{}:
				go func() {
					defer func() {
						<-t.sem
						t.mu.Lock()
						if t.perHost[host]--; t.perHost[host] <= 0 {
							delete(t.perHost, host)
						}
						t.mu.Unlock()
					}()
					t.route(c)
				}()
			default:
				t.mu.Lock()
				t.perHost[host]--
				t.mu.Unlock()
				c.Close() // a flood of connections: memberlist's peers retry
			}
		case <-t.done:
			return
		}
	}
}

func (t *sniffTransport) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(firstByte))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if first[0] == tlsHandshakeRecord {
		if t.onJoin == nil {
			c.Close()
			return
		}
		t.onJoin(pc)
		return
	}
	select {
	case t.streams <- pc:
	case <-t.done:
		c.Close()
	}
}

func (t *sniffTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		// memberlist's listener blocks handing over a connection until
		// someone takes it: the loop goes on taking them until it is down.
		err = t.NetTransport.Shutdown()
		close(t.done)
	})
	return err
}

// peekedConn reads the bytes the sniffer peeked first.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }
