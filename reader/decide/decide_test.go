package decide

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader/exchange"
)

// Decision instants: a Wednesday in summer, when London is UTC+1. At
// openAt the office schedule (09:00–17:00 London) is open though 08:30 UTC
// is not; at closedAt it is closed though 16:30 UTC is within 09–17.
var (
	openAt   = time.Date(2025, 6, 4, 8, 30, 0, 0, time.UTC)
	closedAt = time.Date(2025, 6, 4, 16, 30, 0, 0, time.UTC)
)

type fixture struct {
	*registry
	phones map[string]phone
}

func (f *fixture) card(id, kind, config string, mod func(*command.CreateCard)) {
	f.tb.Helper()
	cc := &command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: kind, ReaderConfig: config,
		NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Ada", LastName: id, Email: id + "@example.com"}}
	if kind == state.KindPrivateID {
		cc.PrivateID = fmt.Sprint(1000 + f.s.Cards.Len())
	}
	if mod != nil {
		mod(cc)
	}
	f.must(cc)
	f.phones[id] = newPhone(f.tb)
}

func newFixture(tb testing.TB) *fixture {
	f := &fixture{registry: newRegistry(tb, 1000), phones: map[string]phone{}}
	tz := "Europe/London"
	f.must(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"})
	f.must(&command.UpdateSite{ID: "site", AccountID: "acc", TimeZone: &tz})
	f.must(&command.CreateSite{ID: "site2", AccountID: "acc", Name: "Paris"})
	for _, n := range []string{"London", "Paris"} {
		f.must(&command.CreateReaderConfig{ID: "rc-" + n, AccountID: "acc", SiteID: "site", Source: "lintel-reader-config 1\nname = " + n + "\n"})
	}
	reader := func(id, site, config string) {
		f.must(&command.CreateReader{ID: id, AccountID: "acc", SiteID: site, NodeID: "n1", Name: id, ReaderConfig: config})
	}
	reader("r1", "site", "London")
	reader("r2", "site", "Paris")
	reader("r3", "site2", "London")
	reader("r4", "site", "London")
	f.must(&command.CreateSchedule{ID: "sched", AccountID: "acc", SiteID: "site", Name: "Office",
		Windows: []command.Window{{Days: []int{1, 2, 3, 4, 5}, From: "09:00", To: "17:00"}}})
	f.must(&command.CreateAccessLevel{ID: "al-open", AccountID: "acc", SiteID: "site", Name: "Always", ReaderIDs: []string{"r1"}})
	f.must(&command.CreateAccessLevel{ID: "al-office", AccountID: "acc", SiteID: "site", Name: "Office", ReaderIDs: []string{"r1"}, ScheduleID: "sched"})

	pid, dev := state.KindPrivateID, state.KindDeviceID
	f.card("dev", dev, "", nil)
	f.card("pid", pid, "London", nil)
	f.card("counted", pid, "London", func(c *command.CreateCard) { c.MaxUses = 3 })
	f.card("exhausted", pid, "London", func(c *command.CreateCard) { c.MaxUses = 1 })
	f.card("future", pid, "London", func(c *command.CreateCard) { v := t0.Add(30 * 24 * time.Hour); c.ValidFrom = &v })
	f.card("past", pid, "London", func(c *command.CreateCard) { v := t0.Add(2 * 24 * time.Hour); c.ValidUntil = &v })
	f.card("office", pid, "London", func(c *command.CreateCard) { c.AccessLevels = []string{"al-office"} })
	f.card("either", pid, "London", func(c *command.CreateCard) { c.AccessLevels = []string{"al-office", "al-open"} })
	for _, id := range []string{"created", "sent", "expired", "pending", "revoked", "lost"} {
		f.card(id, pid, "London", nil)
	}
	for _, id := range []string{"dev", "pid", "counted", "exhausted", "future", "past", "office", "either", "pending", "revoked", "lost"} {
		f.activate(id, f.phones[id])
	}
	for _, id := range []string{"pending", "revoked", "lost"} {
		f.must(&command.RevokeCard{ID: id, AccountID: "acc"})
	}
	rc, err := exchange.ReceiptFor("revoked", f.phones["revoked"].sign)
	if err != nil {
		tb.Fatal(err)
	}
	f.must(&command.ConfirmRevoke{CardID: "revoked", Signature: rc.Signature})
	f.must(&command.MarkLost{ID: "lost", AccountID: "acc"})
	// A configuration card, activated: it still never opens a door.
	f.must(&command.CreateConfigurator{ID: "cf", AccountID: "acc", SiteID: "site", FirstName: "Cy", LastName: "Config", Email: "cf@example.com"})
	f.must(&command.CreateConfigCard{ID: "cfg", AccountID: "acc", ConfiguratorID: "cf", ReaderConfig: "London"})
	f.phones["cfg"] = newPhone(tb)
	f.activate("cfg", f.phones["cfg"])
	// Expire one link, then send another card after the expiry.
	f.send("expired")
	f.at = f.at.Add(8 * 24 * time.Hour)
	f.must(&command.ExpireLinks{})
	f.send("sent")
	f.phones["ghost"] = newPhone(tb)

	// No command records a use yet (the node's use commit is not written):
	// set the count as that commit will.
	c := f.s.Cards.At("exhausted")
	c.Uses = 1
	f.s.Cards.Put("exhausted", c)
	// A reader of another account (no command makes a second account here).
	foreign := f.s.Readers.At("r1")
	foreign.ID, foreign.AccountID = "r-foreign", "other"
	f.s.Readers.Put(foreign.ID, foreign)
	return f
}

func TestDecide(t *testing.T) {
	f := newFixture(t)
	for id, want := range map[string]string{"created": state.CardCreated, "sent": state.CardSent, "expired": state.CardExpired,
		"pending": state.CardPendingRevoke, "revoked": state.CardRevoked, "lost": state.CardLost, "cfg": state.CardActivated} {
		if got := f.s.Cards.At(id).Status; got != want {
			t.Fatalf("fixture: card %s is %s, want %s", id, got, want)
		}
	}
	keys := NewKeyCache(0)
	other := newPhone(t)
	rows := []struct {
		name, reader, card string
		now                time.Time
		signer             *phone // nil: the card's own phone
		tamper             func(*exchange.Challenge, *exchange.Presentation)
		want               Decision
	}{
		{name: "granted device_id", reader: "r1", card: "dev", want: Decision{Granted: true}},
		{name: "granted device_id other configuration", reader: "r2", card: "dev", want: Decision{Granted: true}},
		{name: "granted private_id", reader: "r1", card: "pid", want: Decision{Granted: true}},
		{name: "granted counted", reader: "r1", card: "counted", want: Decision{Granted: true, UseCounted: true}},
		{name: "granted in schedule (site time zone)", reader: "r1", card: "office", want: Decision{Granted: true}},
		{name: "granted by an unscheduled level", reader: "r1", card: "either", now: closedAt, want: Decision{Granted: true}},
		{name: "replay", reader: "r1", card: "pid", tamper: func(c *exchange.Challenge, _ *exchange.Presentation) { c.Nonce[0] ^= 1 },
			want: Decision{Reason: "replay"}},
		{name: "unknown card", reader: "r1", card: "ghost", want: Decision{Reason: "unknown_card"}},
		{name: "configuration card", reader: "r1", card: "cfg", want: Decision{Reason: "unknown_card"}},
		{name: "another account", reader: "r-foreign", card: "pid", want: Decision{Reason: "unknown_card"}},
		{name: "lost", reader: "r1", card: "lost", want: Decision{Reason: "lost", Delete: true}},
		{name: "pending revoke", reader: "r1", card: "pending", want: Decision{Reason: "revoked", Delete: true}},
		{name: "revoked", reader: "r1", card: "revoked", want: Decision{Reason: "revoked", Delete: true}},
		{name: "created", reader: "r1", card: "created", want: Decision{Reason: "not_activated"}},
		{name: "sent", reader: "r1", card: "sent", want: Decision{Reason: "not_activated"}},
		{name: "expired link", reader: "r1", card: "expired", want: Decision{Reason: "not_activated"}},
		{name: "another phone", reader: "r1", card: "pid", signer: &other, want: Decision{Reason: "bad_signature"}},
		{name: "signature altered", reader: "r1", card: "pid", tamper: func(_ *exchange.Challenge, p *exchange.Presentation) {
			p.Signature[len(p.Signature)-1] ^= 1
		}, want: Decision{Reason: "bad_signature"}},
		{name: "challenge of another reader", reader: "r4", card: "pid", want: Decision{Reason: "bad_signature"},
			tamper: func(c *exchange.Challenge, _ *exchange.Presentation) {}}, // presented at r1's challenge, decided at r4
		{name: "reader of another site", reader: "r3", card: "pid", want: Decision{Reason: "wrong_reader"}},
		{name: "unknown reader", reader: "r9", card: "pid", want: Decision{Reason: "wrong_reader"}},
		{name: "private_id at another configuration", reader: "r2", card: "pid", want: Decision{Reason: "wrong_reader"}},
		{name: "not yet valid", reader: "r1", card: "future", want: Decision{Reason: "not_yet_valid"}},
		{name: "validity passed", reader: "r1", card: "past", want: Decision{Reason: "expired"}},
		{name: "uses exhausted", reader: "r1", card: "exhausted", want: Decision{Reason: "uses_exhausted"}},
		{name: "no level lists the reader", reader: "r4", card: "office", want: Decision{Reason: "wrong_reader"}},
		{name: "outside schedule", reader: "r1", card: "office", now: closedAt, want: Decision{Reason: "outside_schedule"}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			p := f.phones[row.card]
			if row.signer != nil {
				p = *row.signer
			}
			challengeAt := row.reader
			if row.name == "challenge of another reader" {
				challengeAt = "r1"
			}
			ch, pr := present(t, challengeAt, "site", row.card, p)
			if row.tamper != nil {
				row.tamper(&ch, &pr)
			}
			now := row.now
			if now.IsZero() {
				now = openAt
			}
			want := row.want
			if c, ok := f.s.Cards.Get(row.card); ok && want.Reason != "replay" && want.Reason != "unknown_card" {
				want.CardID, want.CardholderName = c.ID, "Ada "+c.ID
			}
			for _, kc := range []*KeyCache{keys, nil} { // cached and uncached agree
				if got := Decide(f.s, row.reader, ch, pr, now, kc); got != want {
					t.Fatalf("got %+v, want %+v", got, want)
				}
			}
			if (want.Reason == "") != want.Granted {
				t.Fatal("a grant has no reason and a denial has one")
			}
		})
	}
}

// A re-issued card is bound to its new phone: the cache drops the old key.
func TestDecide_ReissuedCardUsesNewKey(t *testing.T) {
	f := newFixture(t)
	keys := NewKeyCache(0)
	old := f.phones["pid"]
	ch, pr := present(t, "r1", "site", "pid", old)
	if d := Decide(f.s, "r1", ch, pr, openAt, keys); !d.Granted {
		t.Fatalf("before re-issue: %+v", d)
	}
	f.must(&command.RevokeCard{ID: "pid", AccountID: "acc"})
	rc, _ := exchange.ReceiptFor("pid", old.sign)
	f.must(&command.ConfirmRevoke{CardID: "pid", Signature: rc.Signature})
	f.must(&command.SendCard{ID: "pid", AccountID: "acc", LinkHash: "link-pid-2", LinkExpires: f.at.Add(time.Hour),
		Message: command.Message{ID: "m-pid-2", To: "pid@example.com", Subject: "Your card", Body: "https://node/activate/link-pid-2"}})
	fresh := newPhone(t)
	f.must(&command.ActivateCard{LinkHash: "link-pid-2", DeviceKey: fresh.public()})
	ch, pr = present(t, "r1", "site", "pid", old)
	if d := Decide(f.s, "r1", ch, pr, openAt, keys); d.Reason != "bad_signature" {
		t.Fatalf("old phone after re-issue: %+v", d)
	}
	ch, pr = present(t, "r1", "site", "pid", fresh)
	if d := Decide(f.s, "r1", ch, pr, openAt, keys); !d.Granted {
		t.Fatalf("new phone after re-issue: %+v", d)
	}
	if keys.Len() != 1 {
		t.Fatalf("cache holds %d keys for one card", keys.Len())
	}
}

// verify (cached key, and no cache) and exchange.Verify (PKIX DER) agree on
// good and bad input: altered and truncated signatures, other signers,
// another reader, another nonce, a P-384 key, a key that is not PKIX.
func TestVerifyAgreesWithExchange(t *testing.T) {
	f := newFixture(t)
	keys := NewKeyCache(4)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	outcomes := map[bool]int{}
	for i := 0; i < 60; i++ {
		signer := f.phones["pid"]
		if i%3 == 1 {
			signer = newPhone(t)
		}
		reader := "r1"
		if i%13 == 6 {
			reader = "r2" // a challenge issued by another reader
		}
		ch, pr := present(t, reader, "site", "pid", signer)
		if i%5 == 2 {
			pr.Signature[i%len(pr.Signature)] ^= 0x10
		}
		if i%7 == 3 {
			pr.Signature = pr.Signature[:len(pr.Signature)-1]
		}
		if i%17 == 8 {
			pr.Nonce[0] ^= 1
		}
		card := f.s.Cards.At("pid")
		switch {
		case i%11 == 4:
			card.Device = &state.Device{PublicKey: der384}
		case i%19 == 9:
			card.Device = &state.Device{PublicKey: card.Device.PublicKey[:len(card.Device.PublicKey)-1]}
		}
		want := reader == "r1" && exchange.Verify(pr, ch, card.Device.PublicKey) == nil
		for _, kc := range []*KeyCache{keys, nil} {
			if got := verify(card, "r1", ch, pr, kc); got != want {
				t.Fatalf("row %d (cache %v): verify %v, exchange.Verify %v", i, kc != nil, got, want)
			}
		}
		outcomes[want]++
	}
	if outcomes[true] == 0 || outcomes[false] == 0 {
		t.Fatalf("rows prove nothing: %v", outcomes)
	}
}

// location is the site's Location, kept.
func TestLocation(t *testing.T) {
	at := time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)
	for _, tz := range []string{"", "UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Not/AZone"} {
		site := state.Site{TimeZone: tz}
		for range 2 { // loaded, then kept
			got, want := location(site), site.Location()
			if got.String() != want.String() || at.In(got).Format(time.RFC3339) != at.In(want).Format(time.RFC3339) {
				t.Fatalf("%q: %v, want %v", tz, got, want)
			}
		}
	}
	first := location(state.Site{TimeZone: "Europe/London"})
	if again := location(state.Site{TimeZone: "Europe/London"}); again != first {
		t.Fatal("a time zone is loaded again")
	}
}

func TestKeyCache(t *testing.T) {
	kc := NewKeyCache(8)
	a, b := newPhone(t), newPhone(t)
	if kc.Get("c", a.public()) == nil || kc.Get("c", []byte("junk")) != nil {
		t.Fatal("parse")
	}
	ka := kc.Get("c", a.public())
	if kb := kc.Get("c", b.public()); kb == nil || kb.Equal(ka) {
		t.Fatal("a new key for the card must replace the old one")
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				pub := a.public()
				if i%2 == 1 {
					pub = b.public()
				}
				if kc.Get(fmt.Sprintf("c%d", i%20), pub) == nil {
					t.Error("nil key")
				}
			}
		}()
	}
	wg.Wait()
	if n := kc.Len(); n > 8 {
		t.Fatalf("cache holds %d keys, bound 8", n)
	}
	var none *KeyCache
	if none.Get("c", a.public()) == nil || none.Len() != 0 {
		t.Fatal("nil cache")
	}
}
