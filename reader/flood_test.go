package reader

import (
	"bufio"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"lintel/reader/exchange"
)

// flood holds idle connections to the link from 127.0.0.2 (never a hello:
// each holds its place until the hello timeout) and opens and closes more
// in a loop, while a phone on 127.0.0.1 presents presents times. It returns
// the presentations that did not get their challenge and the slowest.
func flood(tb testing.TB, l *Link, idle, presents int) (failed int, slowest time.Duration) {
	tb.Helper()
	attacker := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: time.Second}
	var held []net.Conn
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // keep idle connections open, and open new ones as the node drops them
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			n := len(held)
			mu.Unlock()
			if n >= idle {
				// churn: one more opened and closed at once
				if c, err := attacker.Dial("tcp", l.Addr()); err == nil {
					c.Close()
				}
				continue
			}
			if c, err := attacker.Dial("tcp", l.Addr()); err == nil {
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}
	})
	time.Sleep(200 * time.Millisecond) // the flood is in place
	var lat []time.Duration
	for range presents {
		start := time.Now()
		c, err := net.DialTimeout("tcp", l.Addr(), time.Second)
		if err != nil {
			failed++
			continue
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(Hello("door-1"))
		f, err := exchange.ReadFrame(bufio.NewReader(c))
		c.Close()
		if err != nil || f.Type != exchange.TypeChallenge {
			failed++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	close(stop)
	wg.Wait()
	if len(lat) > 0 {
		slowest = slices.Max(lat)
	}
	return failed, slowest
}

// A host that floods the reader link with idle and churning connections
// competes with itself: a phone from elsewhere still gets every challenge.
func TestReaderLinkFairUnderFlood(t *testing.T) {
	// Idle places held as long as a node holds them (its hello timeout).
	l, _ := startLinkWith(t, LinkConfig{Timeout: DefaultTimeout, MaxConns: 16})
	failed, slowest := flood(t, l, 500, 30)
	t.Logf("30 presentations beside a flood of 500 idle connections and a churn: %d failed, slowest %s", failed, slowest)
	if failed != 0 {
		t.Fatalf("%d of 30 presentations failed beside the flood", failed)
	}
	l.mu.Lock()
	fromAttacker := len(l.byAddr["127.0.0.2"])
	l.mu.Unlock()
	if fromAttacker > l.cfg.MaxPerAddr {
		t.Fatalf("the flooding host holds %d places, over its %d", fromAttacker, l.cfg.MaxPerAddr)
	}
}

// BenchmarkReaderLinkFlood: the same, at the node's default sizes (256
// places, 32 per host): presentations failed and the slowest challenge.
func BenchmarkReaderLinkFlood(b *testing.B) {
	for range b.N {
		l, _ := startLinkWith(b, LinkConfig{})
		failed, slowest := flood(b, l, 500, 30)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(failed), "failed_of_30")
		b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest_ms")
	}
}

// One idle connection from each of many hosts fills the link; a phone
// from yet another host still gets in, in place of an idle one.
func TestReaderLinkManyHostsOneIdleEach(t *testing.T) {
	l, _ := startLinkWith(t, LinkConfig{Timeout: DefaultTimeout, MaxConns: 64})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 64 {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}}
		c, err := d.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	eventually(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.conns) == 64 })
	time.Sleep(idleAfter + 50*time.Millisecond) // silent long enough to be no phone's
	for i := range 10 {
		c, _, f := hello(t, l.Addr(), "door-1")
		c.Close()
		if f.Type != exchange.TypeChallenge {
			t.Fatalf("presentation %d beside 64 idle hosts: %s", i, f.Type)
		}
	}
}

// An exchange under way is never cut to make room: only a connection that
// has not named its reader gives its place.
func TestReaderLinkKeepsExchangesUnderWay(t *testing.T) {
	l, _ := startLinkWith(t, LinkConfig{Timeout: DefaultTimeout, MaxConns: 2})
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	busy, err := d.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(5 * time.Second))
	busy.Write(Hello("door-1"))
	br := bufio.NewReader(busy)
	first, err := exchange.ReadFrame(br)
	if err != nil || first.Type != exchange.TypeChallenge {
		t.Fatalf("the first phone: %v %v", first.Type, err)
	}
	idle, err := d.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	eventually(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.conns) == 2 })
	c, _, f := hello(t, l.Addr(), "door-1") // from 127.0.0.1: takes the idle one's place
	c.Close()
	if f.Type != exchange.TypeChallenge {
		t.Fatalf("newcomer: %s", f.Type)
	}
	// The first phone's exchange goes on: it answers its challenge and gets a verdict.
	var ch exchange.Challenge
	if err := exchange.DecodeInto(first, &ch); err != nil {
		t.Fatal(err)
	}
	p, _ := exchange.Respond(ch, "card-x", func([]byte) ([]byte, error) { return []byte{0x30, 0x00}, nil })
	writeMsg(busy, p)
	var v exchange.Verdict
	if err := readMsg(br, &v); err != nil || v.Reason != exchange.ReasonUnknownCard || v.Nonce != ch.Nonce {
		t.Fatalf("the exchange under way was cut: %+v %v", v, err)
	}
}

func TestHostOfGroupsIPv6By64(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:4000":              "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:4000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:9":    "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:9":         "2001:db8:1:3::/64",
		"[::ffff:192.0.2.7]:4000":     "192.0.2.7",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostOf(a); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}

// Connections that name a reader and then stall are exchanges under way,
// but a host holding more than its share still gives its oldest place.
func TestReaderLinkNamedStallFlood(t *testing.T) {
	l, _ := startLinkWith(t, LinkConfig{Timeout: DefaultTimeout, MaxConns: 16, MaxPerAddr: 8})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for h := range 2 {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(h+1))}}
		for range 8 {
			c, err := d.Dial("tcp", l.Addr())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write(Hello("door-1"))
			if f, err := exchange.ReadFrame(bufio.NewReader(c)); err != nil || f.Type != exchange.TypeChallenge {
				t.Fatalf("flood connection: %v %v", f.Type, err)
			}
		}
	}
	for i := range 5 {
		c, _, f := hello(t, l.Addr(), "door-1")
		c.Close()
		if f.Type != exchange.TypeChallenge {
			t.Fatalf("presentation %d beside 16 stalled exchanges: %s", i, f.Type)
		}
	}
}
