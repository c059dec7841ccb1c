package ble

// End to end: a real reader.Controller over a real state machine, a phone
// presenting through the transport's GATT handlers.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/consensus/state/voucher"
	"lintel/reader"
	"lintel/reader/exchange"
	"lintel/voucherkey"
)

// fixture is node n1 with reader "front" (and "far", a reader of node n2),
// its controller over a real state machine, and the BLE transport serving
// its readers on a fake hci0. (Built as reader/controller_test.go does.)
type fixture struct {
	t    *testing.T
	mu   sync.RWMutex
	s    *state.State
	idx  uint64
	ids  atomic.Int64
	ctrl *reader.Controller
	// ended receives what each exchange returned.
	ended chan error
	tr    *Transport
	dev   *fakePeripheral
}

func (f *fixture) Read(fn func(*state.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.s)
}

func (f *fixture) apply(c command.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idx++
	res, _ := f.s.Apply(f.idx, c)
	if res.Err != nil { // a typed error: compare before it becomes an error interface
		return res.Err
	}
	return nil
}

func (f *fixture) must(b command.Body) {
	f.t.Helper()
	if err := f.apply(command.Command{Header: command.Header{RequestID: f.newID(), Actor: "op", At: time.Now().UTC()}, Body: b}); err != nil {
		f.t.Fatalf("%T: %v", b, err)
	}
}

func (f *fixture) newID() string { return fmt.Sprintf("id-%d", f.ids.Add(1)) }

// Exchange runs the controller's exchange and reports how it ended.
func (f *fixture) Exchange(conn reader.Conn, readerID string) error {
	err := f.ctrl.Exchange(conn, readerID)
	f.ended <- err
	return err
}

func newFixture(t *testing.T, timeout time.Duration) *fixture {
	f := &fixture{t: t, s: state.New(), ended: make(chan error, 16)}
	f.must(&command.Init{AccountID: "acc", AccountName: "HQ", AccountKind: state.AccountEndCustomer, ProfileID: "prof",
		OperatorID: "op", Email: "admin@example.com", PasswordHash: "$2a$hash", ClusterSecret: bytes.Repeat([]byte{7}, 32)})
	key, _ := voucherkey.GenerateKey()
	f.must(&command.AddIssuer{KeyID: key.KeyID(), PublicKey: key.Public(), Name: "test"})
	_, text := voucher.Issue(key, "acc", "v1", 100, time.Now().Add(-time.Hour))
	f.must(&command.LoadVoucher{AccountID: "acc", Voucher: text})
	f.must(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"})
	f.must(&command.CreateReaderConfig{ID: "rc", AccountID: "acc", SiteID: "site", Source: "lintel-reader-config 1\nname = London\n"})
	f.must(&command.CreateReader{ID: "front", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Front", ReaderConfig: "London", UnlockSeconds: 4})
	f.must(&command.CreateReader{ID: "far", AccountID: "acc", SiteID: "site", NodeID: "n2", Name: "Far", ReaderConfig: "London"})
	var err error
	f.ctrl, err = reader.NewController(reader.Config{
		NodeID: "n1", View: f, Timeout: timeout, NewID: f.newID,
		Commit: func(_ context.Context, c command.Command) error { return f.apply(c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.ctrl.Close)
	fa := newFakeAdapters()
	f.tr = New(f, fa.open, nil)
	t.Cleanup(func() { f.tr.Close() })
	if err := f.tr.SetReaders([]Reader{{ID: "front", Adapter: "hci0"}, {ID: "far", Adapter: "hci0"}}); err != nil {
		t.Fatal(err)
	}
	f.dev = fa.dev("hci0")
	return f
}

// card makes an activated device card on a new phone.
func (f *fixture) card(id string) phone {
	f.t.Helper()
	f.must(&command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: state.KindDeviceID,
		NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Ada", LastName: id, Email: id + "@example.com"}})
	f.must(&command.SendCard{ID: id, AccountID: "acc", LinkHash: "link-" + id, LinkExpires: time.Now().Add(time.Hour),
		Message: command.Message{ID: "m-" + id, To: id + "@example.com", Subject: "s", Body: "b"}})
	p := newPhone(f.t)
	f.must(&command.ActivateCard{LinkHash: "link-" + id, DeviceKey: p.public()})
	return p
}

func (f *fixture) cardStatus(id string) (st string) {
	f.Read(func(s *state.State) { st = s.Cards.At(id).Status })
	return
}

func (f *fixture) exchangeEnded() error {
	f.t.Helper()
	select {
	case err := <-f.ended:
		return err
	case <-time.After(5 * time.Second):
		f.t.Fatal("the exchange did not end in 5 s")
		return nil
	}
}

type phone struct{ key *ecdsa.PrivateKey }

func newPhone(t *testing.T) phone {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return phone{k}
}

func (p phone) public() []byte {
	b, _ := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	return b
}

func (p phone) sign(msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, p.key, sum[:])
}

// wire is the frame of m.
func wire(t *testing.T, m exchange.Message) []byte {
	t.Helper()
	f, err := exchange.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := exchange.AppendFrame(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// phoneAt is a phone connected to reader readerID over the fake GATT,
// with notifications of at most 20 bytes (the default ATT MTU).
func (f *fixture) phoneAt(readerID string) *central {
	c := newCentral(f.t, f.dev.service(readerID), 20)
	c.subscribe()
	return c
}

func (c *central) challenge() exchange.Challenge {
	c.t.Helper()
	var ch exchange.Challenge
	if err := exchange.DecodeInto(c.frame(), &ch); err != nil {
		c.t.Fatalf("challenge: %v", err)
	}
	return ch
}

func (c *central) verdict() exchange.Verdict {
	c.t.Helper()
	var v exchange.Verdict
	if err := exchange.DecodeInto(c.frame(), &v); err != nil {
		c.t.Fatalf("verdict: %v", err)
	}
	return v
}

func (c *central) checkSizes(limit int) {
	c.t.Helper()
	for _, s := range c.n.notificationSizes() {
		if s > limit {
			c.t.Fatalf("a notification of %d bytes; Cap is %d", s, limit)
		}
	}
}

func TestExchangeOverGATT(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	p := f.card("c1")

	// present runs one presentation of cardID signed by key, the frame
	// written in writes of size bytes, and returns the verdict.
	present := func(cardID string, key phone, size int) exchange.Verdict {
		t.Helper()
		c := f.phoneAt("front")
		ch := c.challenge()
		if ch.ReaderID != "front" || ch.SiteID != "site" {
			t.Fatalf("challenge %+v", ch)
		}
		pr, err := exchange.Respond(ch, cardID, key.sign)
		if err != nil {
			t.Fatal(err)
		}
		c.writeSplit(wire(t, &pr), size)
		v := c.verdict()
		if v.Nonce != ch.Nonce {
			t.Fatalf("verdict for another exchange: %+v", v)
		}
		if err := f.exchangeEnded(); err != nil {
			t.Fatalf("exchange: %v", err)
		}
		c.waitServed()
		c.checkSizes(20)
		return v
	}

	t.Run("granted, 20-byte writes", func(t *testing.T) {
		if v := present("c1", p, 20); !v.Granted || v.Reason != exchange.ReasonNone {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("granted, 1-byte writes", func(t *testing.T) {
		if v := present("c1", p, 1); !v.Granted {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("wrong signature denied", func(t *testing.T) {
		if v := present("c1", newPhone(t), 20); v.Granted || v.Reason != exchange.ReasonBadSignature {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("unknown card denied", func(t *testing.T) {
		if v := present("nobody", p, 20); v.Granted || v.Reason != exchange.ReasonUnknownCard {
			t.Fatalf("verdict %+v", v)
		}
	})

	t.Run("two frames in one write: presentation and deletion receipt", func(t *testing.T) {
		q := f.card("c2")
		f.must(&command.RevokeCard{ID: "c2", AccountID: "acc"})
		if st := f.cardStatus("c2"); st != state.CardPendingRevoke {
			t.Fatalf("status %s", st)
		}
		c := f.phoneAt("front")
		ch := c.challenge()
		pr, _ := exchange.Respond(ch, "c2", q.sign)
		rc, err := exchange.ReceiptFor("c2", q.sign)
		if err != nil {
			t.Fatal(err)
		}
		// A phone with a large MTU sends both at once, ahead of the verdict.
		if st := c.write(append(wire(t, &pr), wire(t, &rc)...)); st != 0 {
			t.Fatalf("write: %v", st)
		}
		if v := c.verdict(); v.Granted || v.Reason != exchange.ReasonRevoked || !v.Delete {
			t.Fatalf("verdict %+v", v)
		}
		var ack exchange.Receipt
		if err := exchange.DecodeInto(c.frame(), &ack); err != nil || ack.CardID != "c2" {
			t.Fatalf("receipt echo %+v: %v", ack, err)
		}
		if err := f.exchangeEnded(); err != nil {
			t.Fatal(err)
		}
		if st := f.cardStatus("c2"); st != state.CardRevoked {
			t.Fatalf("status %s after the receipt", st)
		}
		c.checkSizes(20)
	})

	t.Run("garbage denied", func(t *testing.T) {
		c := f.phoneAt("front")
		ch := c.challenge()
		c.writeSplit([]byte("GET / HTTP/1.1\r\nHost: front\r\n\r\n"), 20)
		v := c.verdict()
		if v.Granted || v.Reason != exchange.ReasonFor(exchange.ErrBadMagic) || v.Nonce != ch.Nonce {
			t.Fatalf("verdict %+v", v)
		}
		if err := f.exchangeEnded(); !errors.Is(err, exchange.ErrBadMagic) {
			t.Fatalf("exchange: %v", err)
		}
		c.waitServed()
	})

	t.Run("truncated frame then hang-up: no verdict", func(t *testing.T) {
		c := f.phoneAt("front")
		ch := c.challenge()
		pr, _ := exchange.Respond(ch, "c1", p.sign)
		c.write(wire(t, &pr)[:30])
		c.conn.Close()
		if err := f.exchangeEnded(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("exchange: %v", err)
		}
		c.waitServed()
		if len(c.n.out) != 0 {
			t.Fatal("a verdict was sent to a departed phone")
		}
	})

	t.Run("another node's reader", func(t *testing.T) {
		c := f.phoneAt("far")
		if v := c.verdict(); v.Reason != exchange.ReasonWrongReader {
			t.Fatalf("verdict %+v", v)
		}
		f.exchangeEnded()
		c.waitServed()
	})
}

// A central that subscribes and then says nothing: the exchange times out,
// and nothing of it is left running.
func TestSilentCentralTimesOut(t *testing.T) {
	f := newFixture(t, 200*time.Millisecond)
	base := runtime.NumGoroutine()
	start := time.Now()
	c := f.phoneAt("front")
	c.challenge()
	err := f.exchangeEnded()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("exchange: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Fatalf("timed out after %v, want 200 ms", d)
	}
	// The subscription's handler returns though the central never left.
	c.waitServed()
	settled(t, base)
	if st := c.write([]byte{exchange.Magic}); st != StatusNotSubscribed {
		t.Fatalf("write after the timeout: %v", st)
	}
	// Subscribing again starts a new exchange.
	c.unsubscribe()
	c.subscribe()
	c.challenge()
	if err := f.exchangeEnded(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("second exchange: %v", err)
	}
	c.waitServed()
	settled(t, base)
}
