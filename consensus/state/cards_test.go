package state

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state/voucher"
	"lintel/voucherkey"
)

// registry is a harness with a site, a reader configuration and credits,
// which checks the ledger invariants after every command.
type registry struct {
	*harness
	issuer   voucher.PrivateKey
	vouchers int
}

func newRegistry(t *testing.T, credits int64) *registry {
	r := &registry{harness: newHarness(t)}
	key, err := voucherkey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	r.issuer = key
	r.mustApply(&command.AddIssuer{KeyID: key.KeyID(), PublicKey: key.Public(), Name: "test issuer"})
	r.mustApply(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"})
	for _, name := range []string{"London", "Paris"} {
		r.mustApply(&command.CreateReaderConfig{ID: "rc-" + name, AccountID: "acc", SiteID: "site",
			Source: "lintel-reader-config 1\nname = " + name + "\n"})
	}
	if credits > 0 {
		r.load(credits)
	}
	return r
}

func (r *registry) load(credits int64) Result {
	r.vouchers++
	_, text := voucher.Issue(r.issuer, "acc", fmt.Sprintf("v%d", r.vouchers), credits, t0)
	return r.apply(&command.LoadVoucher{AccountID: "acc", Voucher: text})
}

// apply checks the invariants after every command of these tests.
func (r *registry) apply(b command.Body) Result {
	r.t.Helper()
	res := r.harness.apply(b)
	if err := r.s.CheckInvariants(); err != nil {
		r.t.Fatalf("after %T: %v", b, err)
	}
	return res
}

func (r *registry) must(b command.Body) Result {
	r.t.Helper()
	res := r.apply(b)
	if res.Err != nil {
		r.t.Fatalf("%T rejected: %v", b, res.Err)
	}
	return res
}

func (r *registry) refuse(b command.Body, code string) {
	r.t.Helper()
	if res := r.apply(b); res.Err == nil || res.Err.Code != code {
		r.t.Fatalf("%T: got %+v, want %s", b, res.Err, code)
	}
}

func (r *registry) ledger() Ledger { return r.s.Accounts.At("acc").Credits }

func (r *registry) newCard(id, pid string) {
	r.t.Helper()
	r.must(&command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: pid,
		NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Claudia", LastName: "Green", Email: id + "@example.com"}})
}

func (r *registry) send(id string) string {
	r.t.Helper()
	link := fmt.Sprintf("link-%s-%d", id, r.idx)
	r.must(&command.SendCard{ID: id, AccountID: "acc", LinkHash: link, LinkExpires: r.at.Add(7 * 24 * time.Hour),
		Message: command.Message{ID: "m-" + link, To: id + "@example.com", Subject: "Your card", Body: "https://node/activate/" + link}})
	return link
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

func (p phone) sign(msg []byte) []byte {
	sum := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, p.key, sum[:])
	return sig
}

func (r *registry) status(id string) string { return r.s.Cards.At(id).Status }

func TestCardLifecycleAndCredits(t *testing.T) {
	r := newRegistry(t, 100)
	r.newCard("c1", "1001")
	if r.status("c1") != CardCreated || r.ledger().Reserved != 0 {
		t.Fatalf("created: %s %+v", r.status("c1"), r.ledger())
	}
	link := r.send("c1")
	if l := r.ledger(); r.status("c1") != CardSent || l.Reserved != 5 || l.Available() != 95 || l.Balance != 100 {
		t.Fatalf("sent: %s %+v", r.status("c1"), l)
	}
	if m := r.s.Outbox.At("m-" + link); m.Status != MessageQueued || m.CardID != "c1" {
		t.Fatalf("outbox: %+v", m)
	}
	// Resend: a new link, the old one dies, no new reservation; the old
	// message, still queued, is not delivered with its dead link.
	link2 := r.send("c1")
	if m := r.s.Outbox.At("m-" + link); m.Status != MessageFailed || m.Body != Redacted {
		t.Fatalf("old message after resend: %+v", m)
	}
	if r.ledger().Reserved != 5 {
		t.Fatalf("resend reserved again: %+v", r.ledger())
	}
	p := newPhone(t)
	r.refuse(&command.ActivateCard{LinkHash: link, DeviceKey: p.public()}, "link_replaced")
	r.refuse(&command.ActivateCard{LinkHash: "never-issued", DeviceKey: p.public()}, "link_not_found")
	r.refuse(&command.ActivateCard{LinkHash: link2, DeviceKey: []byte("not a key")}, "invalid_value")
	r.must(&command.ActivateCard{LinkHash: link2, DeviceKey: p.public()})
	if l := r.ledger(); r.status("c1") != CardActivated || l.Reserved != 0 || l.Balance != 95 || l.Used != 5 {
		t.Fatalf("activated: %s %+v", r.status("c1"), l)
	}
	// The link is single use.
	r.refuse(&command.ActivateCard{LinkHash: link2, DeviceKey: newPhone(t).public()}, "link_used")
	r.refuse(&command.SendCard{ID: "c1", AccountID: "acc", LinkHash: "x", LinkExpires: r.at.Add(time.Hour)}, "already_activated")

	// Revoke; only the bound phone's receipt confirms it; then the refund.
	r.must(&command.RevokeCard{ID: "c1", AccountID: "acc"})
	if r.status("c1") != CardPendingRevoke || r.s.Cards.At("c1").RevokedAt == nil {
		t.Fatal("not pending revoke")
	}
	r.refuse(&command.ConfirmRevoke{CardID: "c1", Signature: newPhone(t).sign(command.DeletionReceiptMessage("c1"))}, "bad_signature")
	r.refuse(&command.ConfirmRevoke{CardID: "c1", Signature: p.sign([]byte("something else"))}, "bad_signature")
	r.must(&command.ConfirmRevoke{CardID: "c1", Signature: p.sign(command.DeletionReceiptMessage("c1"))})
	if l := r.ledger(); r.status("c1") != CardRevoked || l.Balance != 100 || l.Refunded != 5 {
		t.Fatalf("revoked: %s %+v", r.status("c1"), l)
	}
	// A second receipt is harmless.
	r.must(&command.ConfirmRevoke{CardID: "c1", Signature: p.sign(command.DeletionReceiptMessage("c1"))})

	// Re-issue to a new phone: send again, a new reservation, another device.
	link3 := r.send("c1")
	p2 := newPhone(t)
	r.must(&command.ActivateCard{LinkHash: link3, DeviceKey: p2.public()})
	if c := r.s.Cards.At("c1"); string(c.Device.PublicKey) != string(p2.public()) || r.ledger().Used != 10 {
		t.Fatalf("re-issue: %+v %+v", c.Device, r.ledger())
	}
}

func TestLinkExpiryReleasesReservation(t *testing.T) {
	r := newRegistry(t, 10)
	r.newCard("c1", "1")
	link := r.send("c1")
	r.at = r.at.Add(7*24*time.Hour + time.Second)
	r.refuse(&command.ActivateCard{LinkHash: link, DeviceKey: newPhone(t).public()}, "link_expired")
	if !r.s.LinksToExpire(r.at) {
		t.Fatal("LinksToExpire says nothing to do")
	}
	r.must(&command.ExpireLinks{})
	if r.status("c1") != CardExpired || r.ledger().Reserved != 0 {
		t.Fatalf("expired: %s %+v", r.status("c1"), r.ledger())
	}
	r.refuse(&command.ActivateCard{LinkHash: link, DeviceKey: newPhone(t).public()}, "link_expired")
	// An expired card can be sent again.
	r.send("c1")
	if r.status("c1") != CardSent || r.ledger().Reserved != 5 {
		t.Fatal("resend after expiry")
	}
}

// Seed 003, "Available credit": the displayed amount, the credits of cards
// at the activation stage, what is left for new cards; resending a card not
// yet activated stays possible. Lintel never reserves beyond the balance, so
// the seed's third example (0 shown, 50 pending) is 50 shown, 50 pending.
func TestAvailableCreditExamples(t *testing.T) {
	for _, ex := range []struct{ displayed, pending, available int64 }{
		{4500, 500, 4000},
		{100, 10, 90},
		{50, 50, 0},
	} {
		t.Run(fmt.Sprint(ex.displayed), func(t *testing.T) {
			r := newRegistry(t, ex.displayed)
			for i := int64(0); i < ex.pending/5; i++ {
				id := fmt.Sprintf("c%d", i)
				r.newCard(id, fmt.Sprint(1000+i))
				r.send(id)
			}
			l := r.ledger()
			if l.Balance != ex.displayed || l.Reserved != ex.pending || l.Available() != ex.available {
				t.Fatalf("balance %d reserved %d available %d", l.Balance, l.Reserved, l.Available())
			}
			r.send("c0") // resending is still possible
			if ex.available == 0 {
				r.newCard("extra", "999999")
				r.refuse(&command.SendCard{ID: "extra", AccountID: "acc", LinkHash: "l", LinkExpires: r.at.Add(time.Hour)}, "insufficient_credit")
			}
		})
	}
}

func TestAlertThreshold(t *testing.T) {
	r := newRegistry(t, 20)
	r.must(&command.SetAlertThreshold{AccountID: "acc", Threshold: 15})
	if r.ledger().Alert() {
		t.Fatal("alert at 20 available with threshold 15")
	}
	r.newCard("c1", "1")
	r.send("c1")
	if !r.ledger().Alert() {
		t.Fatal("no alert at 15 available with threshold 15")
	}
	r.refuse(&command.SetAlertThreshold{AccountID: "acc", Threshold: -1}, "invalid_value")
}

func TestVouchersLoadOnce(t *testing.T) {
	r := newRegistry(t, 0)
	_, text := voucher.Issue(r.issuer, "acc", "v-1", 40, t0)
	r.must(&command.LoadVoucher{AccountID: "acc", Voucher: text})
	r.refuse(&command.LoadVoucher{AccountID: "acc", Voucher: text}, "voucher_used")
	if l := r.ledger(); l.Loaded != 40 || l.Balance != 40 || l.LastLoaded == nil {
		t.Fatalf("ledger %+v", l)
	}
	other, _ := voucherkey.GenerateKey()
	_, stranger := voucher.Issue(other, "acc", "v-2", 40, t0)
	r.refuse(&command.LoadVoucher{AccountID: "acc", Voucher: stranger}, "unknown_issuer")
	_, forOther := voucher.Issue(r.issuer, "someone-else", "v-3", 40, t0)
	r.refuse(&command.LoadVoucher{AccountID: "acc", Voucher: forOther}, "wrong_account")
	tampered := []byte(string(text))
	for i := range tampered {
		if string(tampered[i:i+3]) == "40\n" {
			tampered[i] = '9'
			break
		}
	}
	v2 := []byte(string(tampered))
	r.refuse(&command.LoadVoucher{AccountID: "acc", Voucher: []byte(string(v2))}, "bad_signature")
	r.refuse(&command.LoadVoucher{AccountID: "acc", Voucher: []byte("garbage")}, "invalid_voucher")
	r.refuse(&command.AddIssuer{KeyID: "abc", PublicKey: []byte("short")}, "invalid_value")
}

// The seed's table "Modifying a virtual user card": which field may change in which status.
func TestFieldLockTable(t *testing.T) {
	open := func(statuses ...string) map[string]bool {
		m := map[string]bool{}
		for _, s := range statuses {
			m[s] = true
		}
		return m
	}
	all := open(CardCreated, CardSent, CardActivated, CardPendingRevoke, CardRevoked)
	table := map[string]map[string]bool{
		"first_name":    all,
		"last_name":     all,
		"phone":         all,
		"fields":        all,
		"reader_config": open(CardCreated),
		"private_id":    open(CardCreated),
		"email":         open(CardCreated),
	}
	edit := func(field string) *command.UpdateCard {
		u := &command.UpdateCard{ID: "c", AccountID: "acc"}
		s := func(v string) *string { return &v }
		switch field {
		case "first_name":
			u.FirstName = s("Mary")
		case "last_name":
			u.LastName = s("Foster")
		case "phone":
			u.Phone = s("0123")
		case "fields":
			u.Fields = &map[string]string{"post": "7"}
		case "reader_config":
			u.ReaderConfig = s("Paris")
		case "private_id":
			u.PrivateID = s("4242")
		case "email":
			u.Email = s("mary@example.com")
		}
		return u
	}
	for _, status := range []string{CardCreated, CardSent, CardActivated, CardPendingRevoke, CardRevoked} {
		for field, allowed := range table {
			t.Run(status+"/"+field, func(t *testing.T) {
				r := newRegistry(t, 100)
				r.newCard("c", "1")
				p := newPhone(t)
				if status != CardCreated {
					link := r.send("c")
					if status != CardSent {
						r.must(&command.ActivateCard{LinkHash: link, DeviceKey: p.public()})
					}
					if status == CardPendingRevoke || status == CardRevoked {
						r.must(&command.RevokeCard{ID: "c", AccountID: "acc"})
					}
					if status == CardRevoked {
						r.must(&command.ConfirmRevoke{CardID: "c", Signature: p.sign(command.DeletionReceiptMessage("c"))})
					}
				}
				if r.status("c") != status {
					t.Fatalf("setup reached %s", r.status("c"))
				}
				if allowed[status] {
					r.must(edit(field))
				} else {
					r.refuse(edit(field), "field_locked")
				}
			})
		}
	}
}

// Rule (1) of the table: device-ID → private-ID and private-ID → private-ID
// are possible while created; private-ID → device-ID never is.
func TestConfigurationChangeRule(t *testing.T) {
	r := newRegistry(t, 0)
	r.must(&command.CreateCard{ID: "orange", SiteID: "site", AccountID: "acc", Kind: KindDeviceID,
		NewCardholder: &command.CreateCardholder{ID: "h1", FirstName: "A", LastName: "B", Email: "a@example.com"}})
	s := func(v string) *string { return &v }
	r.refuse(&command.UpdateCard{ID: "orange", AccountID: "acc", ReaderConfig: s("London"), Kind: s(KindPrivateID)}, "required")
	r.must(&command.UpdateCard{ID: "orange", AccountID: "acc", ReaderConfig: s("London"), Kind: s(KindPrivateID), PrivateID: s("77")})
	if c := r.s.Cards.At("orange"); c.Kind != KindPrivateID || c.ReaderConfig != "London" {
		t.Fatalf("device→private: %+v", c)
	}
	r.must(&command.UpdateCard{ID: "orange", AccountID: "acc", ReaderConfig: s("Paris")})
	r.refuse(&command.UpdateCard{ID: "orange", AccountID: "acc", Kind: s(KindDeviceID), ReaderConfig: s("")}, "field_locked")
	r.refuse(&command.UpdateCard{ID: "orange", AccountID: "acc", ReaderConfig: s("Nowhere")}, "reader_config_not_found")
}

func TestPrivateIDUniqueness(t *testing.T) {
	r := newRegistry(t, 0)
	r.newCard("a", "555")
	r.refuse(&command.CreateCard{ID: "b", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "555",
		NewCardholder: &command.CreateCardholder{ID: "hb", FirstName: "B", LastName: "B", Email: "b@example.com"}}, "duplicate_private_id")
	// Another configuration may use the same number.
	r.must(&command.CreateCard{ID: "c", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "Paris", PrivateID: "555",
		NewCardholder: &command.CreateCardholder{ID: "hc", FirstName: "C", LastName: "C", Email: "c@example.com"}})
	// One cardholder, one card per configuration.
	r.refuse(&command.CreateCard{ID: "d", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "556", CardholderID: "h-a"}, "duplicate_card")
	// The site allows duplicates: now it works.
	yes := true
	r.must(&command.UpdateSite{ID: "site", AccountID: "acc", PrivateIDDuplicates: &yes})
	r.must(&command.CreateCard{ID: "b", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "555",
		NewCardholder: &command.CreateCardholder{ID: "hb", FirstName: "B", LastName: "B", Email: "b@example.com"}})
	// A rejected card leaves no new cardholder behind.
	r.refuse(&command.CreateCard{ID: "e", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "abc",
		NewCardholder: &command.CreateCardholder{ID: "he", FirstName: "E", LastName: "E", Email: "e@example.com"}}, "invalid_value")
	if _, ok := r.s.Cardholders.Get("he"); ok {
		t.Fatal("rejected card created its cardholder")
	}
}

// Delete: an activated card's credits are lost, a sent card's reservation
// is released; lost: only from revoked or pending revoke, and from pending
// revoke the credits are lost. A lost card frees its place for a new card.
func TestDeleteAndLost(t *testing.T) {
	r := newRegistry(t, 100)
	p := newPhone(t)
	activate := func(id, pid string) {
		r.newCard(id, pid)
		r.must(&command.ActivateCard{LinkHash: r.send(id), DeviceKey: p.public()})
	}
	r.newCard("sent", "1")
	r.send("sent")
	r.must(&command.DeleteCard{ID: "sent", AccountID: "acc"})
	if l := r.ledger(); l.Reserved != 0 || l.Balance != 100 {
		t.Fatalf("delete sent: %+v", l)
	}
	activate("act", "2")
	r.must(&command.DeleteCard{ID: "act", AccountID: "acc"})
	if l := r.ledger(); l.Balance != 95 || l.Lost != 5 {
		t.Fatalf("delete activated: %+v", l)
	}
	activate("pr", "3")
	r.refuse(&command.MarkLost{ID: "pr", AccountID: "acc"}, "invalid_status")
	r.must(&command.RevokeCard{ID: "pr", AccountID: "acc"})
	r.must(&command.MarkLost{ID: "pr", AccountID: "acc"})
	if l := r.ledger(); r.status("pr") != CardLost || l.Lost != 10 || l.Balance != 90 {
		t.Fatalf("lost from pending revoke: %s %+v", r.status("pr"), l)
	}
	// A lost card never comes back to life, and its holder may get a new card of the same configuration.
	r.refuse(&command.RevokeCard{ID: "pr", AccountID: "acc"}, "invalid_status")
	r.must(&command.CreateCard{ID: "pr2", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "3", CardholderID: "h-pr"})

	activate("rv", "4")
	r.must(&command.RevokeCard{ID: "rv", AccountID: "acc"})
	r.must(&command.ConfirmRevoke{CardID: "rv", Signature: p.sign(command.DeletionReceiptMessage("rv"))})
	r.must(&command.MarkLost{ID: "rv", AccountID: "acc"})
	r.must(&command.ConfirmRevoke{CardID: "rv", Signature: p.sign(command.DeletionReceiptMessage("rv"))})
	r.refuse(&command.ConfirmRevoke{CardID: "rv", Signature: newPhone(t).sign(command.DeletionReceiptMessage("rv"))}, "bad_signature")
	if l := r.ledger(); l.Lost != 10 || l.Refunded != 5 {
		t.Fatalf("lost from revoked loses nothing more: %+v", l)
	}
	r.refuse(&command.RevokeCard{ID: "nope", AccountID: "acc"}, "card_not_found")
	r.refuse(&command.DeleteCard{ID: "rv", AccountID: "other"}, "card_not_found")
}

func TestCardholders(t *testing.T) {
	r := newRegistry(t, 0)
	from, until := t0, t0.Add(48*time.Hour)
	r.must(&command.CreateCardholder{ID: "v", AccountID: "acc", FirstName: "Vi", LastName: "Sitor", Email: "5551234567@vtext.com",
		Visitor: true, ValidFrom: &from, ValidUntil: &until})
	r.refuse(&command.CreateCardholder{ID: "v2", AccountID: "acc", FirstName: "Vi", LastName: "Sitor", Visitor: true}, "required")
	r.refuse(&command.CreateCardholder{ID: "v3", AccountID: "acc", FirstName: "A", LastName: "B", Email: "not-an-email"}, "invalid_value")
	r.refuse(&command.CreateCardholder{ID: "v4", AccountID: "acc", FirstName: "A", LastName: "B", ValidFrom: &until, ValidUntil: &from}, "invalid_value")
	// A visitor's card takes the visitor's window.
	r.must(&command.CreateCard{ID: "vc", SiteID: "site", AccountID: "acc", Kind: KindDeviceID, CardholderID: "v"})
	if c := r.s.Cards.At("vc"); c.ValidUntil == nil || !c.ValidUntil.Equal(until) {
		t.Fatalf("visitor window: %+v", c)
	}
	// Several cards, one per configuration.
	r.must(&command.CreateCard{ID: "vc2", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "9", CardholderID: "v"})
}

func TestOutboxDeliveryRedactsTheLink(t *testing.T) {
	r := newRegistry(t, 10)
	r.newCard("c1", "1")
	link := r.send("c1")
	id := "m-" + link
	if got := r.s.PendingMessages(); len(got) != 1 || got[0].ID != id {
		t.Fatalf("pending: %+v", got)
	}
	r.must(&command.MessageFailed{ID: id, Error: "connection refused"})
	if m := r.s.Outbox.At(id); m.Status != MessageQueued || m.Attempts != 1 || m.LastError == "" {
		t.Fatalf("after a failed attempt: %+v", m)
	}
	r.must(&command.MessageDelivered{ID: id})
	m := r.s.Outbox.At(id)
	if m.Status != MessageSent || m.Attempts != 2 || m.Body != Redacted || m.SentAt == nil {
		t.Fatalf("delivered: %+v", m)
	}
	// Delivered once: a late failure or a repeat changes nothing.
	r.must(&command.MessageFailed{ID: id, Error: "late", Final: true})
	r.must(&command.MessageDelivered{ID: id})
	if r.s.Outbox.At(id) != m || len(r.s.PendingMessages()) != 0 {
		t.Fatalf("after repeats: %+v", r.s.Outbox.At(id))
	}
	r.refuse(&command.MessageDelivered{ID: "nope"}, "message_not_found")
}

func TestImportCardsAllOrNone(t *testing.T) {
	r := newRegistry(t, 0)
	row := func(id, pid string) command.CreateCard {
		return command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: pid,
			NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "F", LastName: "L", Email: id + "@example.com"}}
	}
	good := []command.CreateCard{row("a", "1"), row("b", "2")}
	bad := []command.CreateCard{row("c", "3"), row("d", "3")} // duplicate private id within the file
	if errs := r.s.CheckImport(command.Header{At: r.at}, bad); len(errs) != 1 || errs[0].Row != 1 || errs[0].Rejection.Code != "duplicate_private_id" {
		t.Fatalf("CheckImport: %+v", errs)
	}
	if r.s.Cards.Len() != 0 {
		t.Fatal("CheckImport changed the state")
	}
	r.refuse(&command.ImportCards{Cards: bad}, "duplicate_private_id")
	if r.s.Cards.Len() != 0 || r.s.Cardholders.Len() != 0 {
		t.Fatalf("a refused batch left %d cards and %d cardholders", r.s.Cards.Len(), r.s.Cardholders.Len())
	}
	r.must(&command.ImportCards{Cards: good})
	if r.s.Cards.Len() != 2 || r.s.Cards.At("b").Status != CardCreated {
		t.Fatalf("import: %d cards", r.s.Cards.Len())
	}
	// The refused batch's ids are free again and the good ones are taken.
	r.refuse(&command.ImportCards{Cards: []command.CreateCard{row("a", "9")}}, "duplicate_id")
}

// What the phone's page says of a link: works, used, replaced by a newer
// one, expired, or never existed.
func TestActivationLinkTellsWhy(t *testing.T) {
	r := newRegistry(t, 20)
	r.newCard("c1", "1")
	first := r.send("c1")
	if c, why := r.s.ActivationLink(first); why != LinkUsable || c.ID != "c1" {
		t.Fatalf("a fresh link: %q %q", c.ID, why)
	}
	second := r.send("c1") // resent: the first stops working
	if _, why := r.s.ActivationLink(first); why != LinkReplaced {
		t.Fatalf("a replaced link: %q", why)
	}
	r.must(&command.ActivateCard{LinkHash: second, DeviceKey: newPhone(t).public()})
	if c, why := r.s.ActivationLink(second); why != LinkUsed || c.ID != "c1" {
		t.Fatalf("a used link: %q %q", c.ID, why)
	}
	r.newCard("c2", "2")
	late := r.send("c2")
	r.at = r.at.Add(7*24*time.Hour + time.Second)
	r.must(&command.ExpireLinks{})
	if _, why := r.s.ActivationLink(late); why != LinkExpired {
		t.Fatalf("an expired link: %q", why)
	}
	if c, why := r.s.ActivationLink("never-sent"); why != LinkUnknown || c.ID != "" {
		t.Fatalf("an unknown link: %q %q", c.ID, why)
	}
}
