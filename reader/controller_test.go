package reader

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/consensus/state/voucher"
	"lintel/reader/exchange"
	"lintel/voucherkey"
)

// fixture is one node's controller over a real state machine: commands are
// applied to the state as the node's Raft would apply them, and the quorum
// can be taken away.
type fixture struct {
	t      *testing.T
	mu     sync.RWMutex
	s      *state.State
	idx    uint64
	noQ    atomic.Bool // no quorum
	lostAt time.Time
	stale  atomic.Pointer[time.Time] // connected but not applying since then
	door   *recordDoor
	events *EventLog
	ctrl   *Controller
	dir    string
	ids    atomic.Int64
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
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// must applies an operator's command now.
func (f *fixture) must(b command.Body) {
	f.t.Helper()
	if err := f.apply(command.Command{Header: command.Header{RequestID: f.newID(), Actor: "op", At: time.Now().UTC()}, Body: b}); err != nil {
		f.t.Fatalf("%T: %v", b, err)
	}
}

func (f *fixture) newID() string { return fmt.Sprintf("id-%d", f.ids.Add(1)) }

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, s: state.New(), door: &recordDoor{}, dir: t.TempDir()}
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
	f.start()
	return f
}

// start (or restart) the controller on the fixture's data dir.
func (f *fixture) start() {
	var err error
	if f.events, err = OpenEventLog(f.dir); err != nil {
		f.t.Fatal(err)
	}
	f.ctrl, err = NewController(Config{
		NodeID: "n1", View: f, Events: f.events, Door: f.door, Timeout: 2 * time.Second, NewID: f.newID,
		Commit: func(_ context.Context, c command.Command) error {
			if f.noQ.Load() {
				return errors.New("no quorum")
			}
			return f.apply(c)
		},
		Quorum: func() (bool, time.Time) { return !f.noQ.Load(), f.lostAt },
		Current: func() (bool, time.Time) {
			if since := f.stale.Load(); since != nil {
				return false, *since
			}
			return !f.noQ.Load(), f.lostAt
		},
		VerdictKey: func() ed25519.PrivateKey {
			var k ed25519.PrivateKey
			f.Read(func(s *state.State) { k = s.VerdictKey() })
			return k
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(f.stop)
}

func (f *fixture) stop() {
	if f.ctrl != nil {
		f.ctrl.Close()
		f.events.Close()
		f.ctrl = nil
	}
}

// card makes an activated device card on a new phone.
func (f *fixture) card(id string, maxUses int64) testPhone {
	f.t.Helper()
	f.must(&command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: state.KindDeviceID, MaxUses: maxUses,
		NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Ada", LastName: id, Email: id + "@example.com"}})
	f.must(&command.SendCard{ID: id, AccountID: "acc", LinkHash: "link-" + id, LinkExpires: time.Now().Add(time.Hour),
		Message: command.Message{ID: "m-" + id, To: id + "@example.com", Subject: "s", Body: "b"}})
	p := newTestPhone(f.t)
	f.must(&command.ActivateCard{LinkHash: "link-" + id, DeviceKey: p.public()})
	return p
}

func (f *fixture) cardStatus(id string) (st string, uses int64) {
	f.Read(func(s *state.State) { st, uses = s.Cards.At(id).Status, s.Cards.At(id).Uses })
	return
}

// offline takes the quorum away, lost for the given time already.
func (f *fixture) offline(for_ time.Duration) {
	f.noQ.Store(true)
	f.lostAt = time.Now().Add(-for_)
}

type testPhone struct{ key *ecdsa.PrivateKey }

func newTestPhone(t *testing.T) testPhone {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testPhone{k}
}

func (p testPhone) public() []byte {
	b, _ := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	return b
}

func (p testPhone) sign(msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, p.key, sum[:])
}

// exchangeOverPipe runs the controller's side of one exchange on one end
// of a pipe and hands the phone's end to phoneSide.
func (f *fixture) exchangeOverPipe(readerID string, phoneSide func(net.Conn)) error {
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- f.ctrl.Exchange(a, readerID); a.Close() }()
	b.SetDeadline(time.Now().Add(5 * time.Second))
	phoneSide(b)
	b.Close()
	return <-done
}

type presented struct {
	v     exchange.Verdict
	acked bool // the receipt was echoed
}

// present runs the phone's side: answer the challenge for cardID, read the
// verdict, and after a delete instruction send the receipt.
func (f *fixture) present(readerID, cardID string, p testPhone) presented {
	f.t.Helper()
	var out presented
	f.exchangeOverPipe(readerID, func(c net.Conn) {
		fr, err := exchange.ReadFrame(c)
		if err != nil {
			f.t.Errorf("challenge: %v", err)
			return
		}
		if fr.Type == exchange.TypeVerdict {
			exchange.DecodeInto(fr, &out.v)
			return
		}
		var ch exchange.Challenge
		exchange.DecodeInto(fr, &ch)
		pr, _ := exchange.Respond(ch, cardID, p.sign)
		writeMsg(c, pr)
		if err := readMsg(c, &out.v); err != nil {
			f.t.Errorf("verdict: %v", err)
			return
		}
		if out.v.Delete {
			sig, _ := p.sign(command.DeletionReceiptMessage(cardID))
			writeMsg(c, exchange.Receipt{CardID: cardID, Signature: sig})
			var ack exchange.Receipt
			out.acked = readMsg(c, &ack) == nil && ack.CardID == cardID
		}
	})
	return out
}

// recordDoor is a door driver that remembers what it was told, so tests
// can check the door and the LEDs.
type recordDoor struct {
	mu    sync.Mutex
	calls []string
}

func (d *recordDoor) Unlock(id string, dur time.Duration) {
	d.mu.Lock()
	d.calls = append(d.calls, fmt.Sprintf("unlock %s %s", id, dur))
	d.mu.Unlock()
}

func (d *recordDoor) Show(id string, f Feedback) {
	d.mu.Lock()
	d.calls = append(d.calls, fmt.Sprintf("%s %s", f, id))
	d.mu.Unlock()
}

func (d *recordDoor) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

func lastEvent(t *testing.T, l *EventLog) Event {
	t.Helper()
	evs, err := l.List(EventFilter{})
	if err != nil || len(evs) == 0 {
		t.Fatalf("events: %v %v", evs, err)
	}
	return evs[len(evs)-1]
}

func TestDoorAndFeedback(t *testing.T) {
	f := newFixture(t)
	p := f.card("c1", 0)
	if r := f.present("front", "c1", p); !r.v.Granted {
		t.Fatalf("verdict %+v", r.v)
	}
	if got, want := f.door.take(), []string{"amber front", "unlock front 4s", "green front"}; !slices.Equal(got, want) {
		t.Fatalf("granted: door %q, want %q", got, want)
	}
	other := newTestPhone(t)
	if r := f.present("front", "c1", other); r.v.Granted || r.v.Reason != exchange.ReasonBadSignature {
		t.Fatalf("other phone: %+v", r.v)
	}
	if got, want := f.door.take(), []string{"amber front", "red front"}; !slices.Equal(got, want) {
		t.Fatalf("denied: door %q, want %q", got, want)
	}
	// Another node's reader: no challenge, no LEDs here.
	if r := f.present("far", "c1", p); r.v.Reason != exchange.ReasonWrongReader {
		t.Fatalf("far reader: %+v", r.v)
	}
	if got := f.door.take(); len(got) != 0 {
		t.Fatalf("another node's reader drove this node's door: %q", got)
	}
}

func TestRemoteUnlock(t *testing.T) {
	f := newFixture(t)
	e, err := f.ctrl.Unlock("front", "op-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.door.take(), []string{"unlock front 4s", "green front"}; !slices.Equal(got, want) {
		t.Fatalf("door %q, want %q", got, want)
	}
	if e.Kind != KindRemoteUnlock || e.By != "op-1" || e.Result != "granted" || e.ID == 0 {
		t.Fatalf("event %+v", e)
	}
	if got := lastEvent(t, f.events); got.Kind != KindRemoteUnlock || got.By != "op-1" || got.ReaderID != "front" {
		t.Fatalf("logged %+v", got)
	}
	p := f.card("c1", 0)
	f.present("front", "c1", p)
	if evs, _ := f.events.List(EventFilter{Kind: KindRemoteUnlock}); len(evs) != 1 || evs[0].By != "op-1" {
		t.Fatalf("kind filter: %+v", evs)
	}
	if evs, _ := f.events.List(EventFilter{Kind: KindPresentation}); len(evs) != 1 || evs[0].CardID != "c1" {
		t.Fatalf("kind filter: %+v", evs)
	}
	f.door.take()
	if _, err := f.ctrl.Unlock("far", "op-1"); !errors.Is(err, ErrNotOwnReader) {
		t.Fatalf("another node's reader: %v", err)
	}
	if _, err := f.ctrl.Unlock("ghost", "op-1"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown reader: %v", err)
	}
	if got := f.door.take(); len(got) != 0 {
		t.Fatalf("refused unlocks drove the door: %q", got)
	}
}

func TestOfflineGraceAndPolicy(t *testing.T) {
	f := newFixture(t)
	p := f.card("c1", 0)
	// Cut off for less than the grace (24 h by default): decisions go on.
	f.offline(time.Hour)
	if r := f.present("front", "c1", p); !r.v.Granted {
		t.Fatalf("within the grace: %+v", r.v)
	}
	// Longer than the grace, policy deny (the default): denied offline.
	f.offline(25 * time.Hour)
	if r := f.present("front", "c1", p); r.v.Granted || r.v.Reason != exchange.ReasonOffline {
		t.Fatalf("past the grace, deny: %+v", r.v)
	}
	// Policy keep: the replica still decides.
	f.noQ.Store(false)
	keep := state.OfflineKeep
	f.must(&command.UpdateSite{ID: "site", AccountID: "acc", OfflinePolicy: &keep})
	f.offline(25 * time.Hour)
	if r := f.present("front", "c1", p); !r.v.Granted {
		t.Fatalf("past the grace, keep: %+v", r.v)
	}
}

func TestMaxUsesOffline(t *testing.T) {
	f := newFixture(t)
	p := f.card("c1", 3)
	// With a quorum the use is committed before the door opens.
	if r := f.present("front", "c1", p); !r.v.Granted {
		t.Fatalf("online: %+v", r.v)
	}
	if _, uses := f.cardStatus("c1"); uses != 1 {
		t.Fatalf("uses %d after one online grant", uses)
	}
	// Policy deny: a counted card cannot be counted offline; fail closed.
	f.offline(time.Minute)
	if r := f.present("front", "c1", p); r.v.Granted || r.v.Reason != exchange.ReasonOffline {
		t.Fatalf("offline, deny: %+v", r.v)
	}
	// Policy keep: granted on the local count, and no more than the limit.
	f.noQ.Store(false)
	keep := state.OfflineKeep
	f.must(&command.UpdateSite{ID: "site", AccountID: "acc", OfflinePolicy: &keep})
	f.offline(time.Minute)
	for i := range 2 {
		if r := f.present("front", "c1", p); !r.v.Granted {
			t.Fatalf("offline use %d: %+v", i+2, r.v)
		}
	}
	if r := f.present("front", "c1", p); r.v.Granted || r.v.Reason != exchange.ReasonUsesExhausted {
		t.Fatalf("offline past the limit: %+v", r.v)
	}
	if n := f.ctrl.QueueLen(); n != 2 {
		t.Fatalf("queued %d uses, want 2", n)
	}
	// The queue survives a restart, and the local count with it.
	f.stop()
	f.start()
	if r := f.present("front", "c1", p); r.v.Granted {
		t.Fatalf("after restart, offline past the limit: %+v", r.v)
	}
	// The quorum is back: the uses are committed, in order, once.
	f.noQ.Store(false)
	waitFor(t, func() bool { return f.ctrl.QueueLen() == 0 })
	if _, uses := f.cardStatus("c1"); uses != 3 {
		t.Fatalf("uses %d after reconciling, want 3", uses)
	}
	if r := f.present("front", "c1", p); r.v.Granted || r.v.Reason != exchange.ReasonUsesExhausted {
		t.Fatalf("after reconciling: %+v", r.v)
	}
}

// Verdicts are signed with the cluster's verdict key over the reader, the
// card and the verdict, so a phone can trust a delete instruction.
func TestVerdictsAreSigned(t *testing.T) {
	f := newFixture(t)
	p := f.card("c1", 0)
	var pub ed25519.PublicKey
	f.Read(func(s *state.State) { pub = s.VerdictKey().Public().(ed25519.PublicKey) })
	r := f.present("front", "c1", p)
	if err := exchange.VerifyVerdict(r.v, "front", "c1", pub); err != nil || !r.v.Granted {
		t.Fatalf("grant: %+v %v", r.v, err)
	}
	f.must(&command.RevokeCard{ID: "c1", AccountID: "acc"})
	r = f.present("front", "c1", p)
	if err := exchange.VerifyVerdict(r.v, "front", "c1", pub); err != nil || !r.v.Delete {
		t.Fatalf("delete instruction: %+v %v", r.v, err)
	}
	if err := exchange.VerifyVerdict(r.v, "front", "c2", pub); err == nil {
		t.Fatal("the signature does not bind the card")
	}
}

func TestRevokeOfflineEnforcedAtOnceAndCommittedLater(t *testing.T) {
	f := newFixture(t)
	p := f.card("c1", 0)
	f.offline(time.Minute)
	revoke := command.Command{Header: command.Header{RequestID: "revoke-1", Actor: "op", At: time.Now().UTC()},
		Body: &command.RevokeCard{ID: "c1", AccountID: "acc"}}
	if err := f.ctrl.WithholdOffline(revoke); err != nil {
		t.Fatal(err)
	}
	if err := f.ctrl.WithholdOffline(command.Command{Body: &command.DeleteCard{ID: "c1"}}); err == nil {
		t.Fatal("a delete was queued offline")
	}
	// Denied at once, with the delete instruction; the receipt is queued
	// and acknowledged (it is durable).
	r := f.present("front", "c1", p)
	if r.v.Granted || r.v.Reason != exchange.ReasonRevoked || !r.v.Delete || !r.acked {
		t.Fatalf("offline revoke: %+v", r)
	}
	if st, _ := f.cardStatus("c1"); st != state.CardActivated {
		t.Fatalf("status %s before the quorum is back", st)
	}
	f.noQ.Store(false)
	waitFor(t, func() bool { return f.ctrl.QueueLen() == 0 })
	if st, _ := f.cardStatus("c1"); st != state.CardRevoked {
		t.Fatalf("status %s after the queue drained, want revoked (revoke, then the receipt)", st)
	}
}

func TestEnrollment(t *testing.T) {
	f := newFixture(t)
	f.must(&command.CreateCardholder{ID: "h", AccountID: "acc", FirstName: "Ada", LastName: "King", Email: "ada@example.com"})
	p := newTestPhone(t)
	enroll := func(readerID string) (exchange.Verdict, exchange.Enrolled) {
		var v exchange.Verdict
		var done exchange.Enrolled
		f.exchangeOverPipe(readerID, func(c net.Conn) {
			fr, _ := exchange.ReadFrame(c)
			var ch exchange.Challenge
			if exchange.DecodeInto(fr, &ch) != nil {
				exchange.DecodeInto(fr, &v)
				return
			}
			e, _ := exchange.RespondEnrollment(ch, p.public(), p.sign)
			writeMsg(c, e)
			fr, err := exchange.ReadFrame(c)
			if err != nil {
				t.Errorf("answer: %v", err)
				return
			}
			if exchange.DecodeInto(fr, &done) != nil {
				exchange.DecodeInto(fr, &v)
			}
		})
		return v, done
	}
	// Not armed: the phone's key is unknown.
	if v, _ := enroll("front"); v.Reason != exchange.ReasonUnknownCard {
		t.Fatalf("not armed: %+v", v)
	}
	f.must(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "h", Until: time.Now().Add(time.Minute)})
	v, done := enroll("front")
	if done.CardID == "" {
		t.Fatalf("armed: no card (%+v)", v)
	}
	var c state.Card
	f.Read(func(s *state.State) { c = s.Cards.At(done.CardID) })
	if c.Status != state.CardActivated || c.CardholderID != "h" || !bytes.Equal(c.Device.PublicKey, p.public()) {
		t.Fatalf("enrolled card %+v", c)
	}
	if e := lastEvent(t, f.events); e.Kind != KindEnrollment || e.CardID != done.CardID || e.Cardholder != "Ada King" {
		t.Fatalf("event %+v", e)
	}
	// The new card opens the door; the reader is no longer armed.
	if r := f.present("front", done.CardID, p); !r.v.Granted {
		t.Fatalf("enrolled card presented: %+v", r.v)
	}
	if v, _ := enroll("front"); v.Reason != exchange.ReasonUnknownCard {
		t.Fatalf("second phone after the arm was used: %+v", v)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not met in 10 s")
}
