package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state/voucher"
	"lintel/voucherkey"
)

// richLog applies a log that leaves a record in every table of the state,
// with cards in every status, extra fields, visitor windows in another time
// zone, empty and absent maps and lists, delivered and failed messages, an
// idempotent request and a refused one. Everything comes from commands in
// h.log, so a replay gives the same state.
func richLog(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, s: New(), at: t0}
	h.mustApply(&command.Init{AccountID: "acc", AccountName: "HQ", AccountKind: AccountReseller, ProfileID: "prof",
		OperatorID: "op", Email: "Admin@Example.com", PasswordHash: "$2a$hash", ClusterSecret: bytes.Repeat([]byte{7}, 32),
		TLS:    &command.ClusterTLS{CACert: []byte("ca"), CAKey: []byte("key"), GossipKey: bytes.Repeat([]byte{5}, 32), JoinToken: "lintel-join-1.x.y"},
		Member: &command.AddMember{NodeID: "n1", Instance: "0123456789abcdef", Key: "sha256:00"}})
	key, err := voucherkey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h.mustApply(&command.AddIssuer{KeyID: key.KeyID(), PublicKey: key.Public(), Name: "test issuer"})
	_, text := voucher.Issue(key, "acc", "v1", 1000, t0)
	h.mustApply(&command.LoadVoucher{AccountID: "acc", Voucher: text})
	h.mustApply(&command.SetAlertThreshold{AccountID: "acc", Threshold: 20})

	tz := "Europe/Paris"
	h.mustApply(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"})
	h.mustApply(&command.UpdateSite{ID: "site", AccountID: "acc", TimeZone: &tz})
	h.mustApply(&command.CreateSite{ID: "site2", AccountID: "acc", Name: "Paris"})
	for _, name := range []string{"London", "Paris"} {
		h.mustApply(&command.CreateReaderConfig{ID: "rc-" + name, AccountID: "acc", SiteID: "site",
			Source: "lintel-reader-config 1\nname = " + name + "\n"})
	}
	h.mustApply(&command.CreateReader{ID: "front", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Front door", ReaderConfig: "London"})
	h.mustApply(&command.CreateSchedule{ID: "office", AccountID: "acc", SiteID: "site", Name: "Office hours",
		Windows: []command.Window{{Days: []int{1, 2, 3, 4, 5}, From: "08:00", To: "18:00"}}, Holidays: []string{"2026-12-25"}})
	h.mustApply(&command.CreateAccessLevel{ID: "staff", AccountID: "acc", SiteID: "site", Name: "Staff", ReaderIDs: []string{"front"}, ScheduleID: "office"})

	for _, id := range []string{"c1", "c2"} {
		h.mustApply(&command.CreateAccount{ID: id, ParentID: "acc", Name: "Customer " + id, Kind: AccountEndCustomer, FirstName: "Mike",
			LastName: "White", Email: id + "@example.com", OperatorID: "op-" + id, ProfileID: "prof-" + id,
			InviteHash: "inv-" + id, InviteExpires: h.at.Add(72 * time.Hour), Credits: 30, TransferID: "t-" + id,
			Invitation: command.Message{ID: "msg-" + id, To: id + "@example.com", Subject: "Welcome", Body: "link"}})
	}
	h.mustApply(&command.TransferCredits{ID: "t-more", From: "acc", To: "c1", Credits: 10, Comment: "top up"})
	h.mustApply(&command.DeleteAccount{ID: "c2", ParentID: "acc"}) // its credits are lost with it

	h.mustApply(&command.CreateSession{SessionID: "s1", TokenHash: "th1", OperatorID: "op", ExpiresAt: h.at.Add(24 * time.Hour)})
	h.mustApply(&command.CreateToken{ID: "tok", OperatorID: "op", Name: "CI", TokenHash: "tok-hash"})
	h.mustApply(&command.CreateProfile{ID: "sales", AccountID: "acc", ProfileRights: command.ProfileRights{Name: "Sales team",
		Rights: map[string][]string{"cards": {"view", "create"}, "sites": {"view"}}}})
	h.mustApply(&command.CreateOperator{ID: "james", AccountID: "acc", FirstName: "James", LastName: "Daniel", Email: "James@Stid.com",
		ProfileID: "sales", SiteIDs: []string{"site"}, InviteHash: "inv-james", InviteExpires: h.at.Add(time.Hour)})
	h.mustApply(&command.RemoveNode{NodeID: "n9", Instance: "i9"})
	h.mustApply(&command.CreateConfigurator{ID: "paul", AccountID: "acc", SiteID: "site", FirstName: "Paul", LastName: "Durand", Email: "paul@stid.com",
		Fields: map[string]string{"company": "STid"}})
	h.mustApply(&command.CreateConfigCard{ID: "cc", AccountID: "acc", ConfiguratorID: "paul", ReaderConfig: "London"})
	h.mustApply(&command.SetTemplate{AccountID: "acc", Kind: TemplateCardActivation, Subject: "Votre badge", Body: "Ouvrez {link}"})

	card := func(id, pid string, mod func(*command.CreateCard)) {
		cc := &command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: pid,
			NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Claudia", LastName: "Green " + id, Email: id + "@example.com"}}
		if mod != nil {
			mod(cc)
		}
		h.mustApply(cc)
	}
	send := func(id string, ttl time.Duration) string {
		link := fmt.Sprintf("link-%s-%d", id, h.idx)
		h.mustApply(&command.SendCard{ID: id, AccountID: "acc", LinkHash: link, LinkExpires: h.at.Add(ttl),
			Message: command.Message{ID: "m-" + link, To: id + "@example.com", Subject: "Your card", Body: "https://node/activate/" + link}})
		return link
	}
	activate := func(id string) phone {
		p := newPhone(t)
		h.mustApply(&command.ActivateCard{LinkHash: send(id, 7*24*time.Hour), DeviceKey: p.public()})
		return p
	}
	paris := time.FixedZone("", 2*3600)
	from, until := time.Date(2026, 12, 1, 9, 0, 0, 0, paris), time.Date(2026, 12, 3, 18, 30, 0, 123456789, paris)
	card("c-fields", "1001", func(cc *command.CreateCard) {
		cc.Fields, cc.AccessLevels, cc.MaxUses = map[string]string{"badge": "A1", "floor": "3"}, []string{"staff"}, 5
		cc.NewCardholder.Phone, cc.NewCardholder.Fields = "+33 1 23 45 67 89", map[string]string{"team": "Blue"}
	})
	card("c-empty", "1002", func(cc *command.CreateCard) {
		cc.Fields, cc.AccessLevels = map[string]string{}, []string{}
		cc.NewCardholder.Fields = map[string]string{}
	})
	card("c-visitor", "1003", func(cc *command.CreateCard) {
		cc.NewCardholder.Visitor, cc.NewCardholder.ValidFrom, cc.NewCardholder.ValidUntil = true, &from, &until
	})
	card("c-second", "", func(cc *command.CreateCard) { // a second card of the same person
		cc.ReaderConfig, cc.PrivateID, cc.NewCardholder, cc.CardholderID = "Paris", "2001", nil, "h-c-fields"
	})
	card("c-device", "", func(cc *command.CreateCard) { cc.Kind, cc.ReaderConfig = KindDeviceID, "" })
	card("c-sent", "1004", nil)
	sent := send("c-sent", 7*24*time.Hour)
	card("c-resent", "1005", nil)
	send("c-resent", 7*24*time.Hour)
	send("c-resent", 7*24*time.Hour) // the first link is retired as replaced
	card("c-active", "1006", nil)
	activate("c-active")
	h.mustApply(&command.RecordUse{CardID: "c-active", ReaderID: "front"})
	card("c-revoked", "1007", nil)
	p := activate("c-revoked")
	h.mustApply(&command.RevokeCard{ID: "c-revoked", AccountID: "acc"})
	h.mustApply(&command.ConfirmRevoke{CardID: "c-revoked", Signature: p.sign(command.DeletionReceiptMessage("c-revoked"))})
	card("c-lost", "1008", nil)
	activate("c-lost")
	h.mustApply(&command.RevokeCard{ID: "c-lost", AccountID: "acc"})
	h.mustApply(&command.MarkLost{ID: "c-lost", AccountID: "acc"})
	card("c-expired", "1009", nil)
	send("c-expired", 2*time.Second)
	card("c-gone", "1010", nil)
	h.mustApply(&command.DeleteCard{ID: "c-gone", AccountID: "acc"})
	h.mustApply(&command.ExpireLinks{})
	h.mustApply(&command.MessageDelivered{ID: h.s.Cards.At("c-active").MessageID})
	h.mustApply(&command.MessageFailed{ID: "m-" + sent, Error: "mailbox full"})
	h.mustApply(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "h-c-sent", Until: h.at.Add(time.Hour)})
	h.mustReject(&command.CreateSite{ID: "site3", AccountID: "acc", Name: "LONDON"}, "duplicate_name") // a refusal is remembered too

	// An idempotent request: kept 24 h in its own queue.
	h.idx++
	h.at = h.at.Add(time.Second)
	c := command.Command{Header: command.Header{RequestID: "idem-1", Actor: "op", At: h.at, Idempotent: true, Node: "n1"},
		Body: &command.CreateSite{ID: "site4", AccountID: "acc", Name: "Berlin"}}
	h.log = append(h.log, c)
	if res, _ := h.s.Apply(h.idx, c); res.Err != nil {
		t.Fatal(res.Err)
	}
	return h
}

// checkFull fails unless every table (map or slice) of s holds something
// and every other field is set: a new table must be added to richLog.
// afterV2: the fields added after the version 2 snapshots were written.
var afterV2 = []string{"TLS", "Members"}

func checkFull(t *testing.T, s *State, newer ...string) {
	t.Helper()
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() || slices.Contains(newer, f.Name) {
			continue
		}
		if v.Field(i).IsZero() || (f.Type.Kind() == reflect.Map || f.Type.Kind() == reflect.Slice) && v.Field(i).Len() == 0 {
			t.Errorf("richLog leaves State.%s empty: make it fill every table", f.Name)
		}
	}
}

// derived returns the derived indexes, which snapshots do not hold.
func derived(s *State) map[string]any {
	return map[string]any{
		"operatorByEmail": s.operatorByEmail.asMap(), "siteByName": s.siteByName.asMap(), "cardByLink": s.cardByLink.asMap(),
		"cardByOldLink": s.cardByOldLink.asMap(), "privateIDs": s.privateIDs.asMap(), "holderConfigs": s.holderConfigs.asMap(),
		"siteCards": s.siteCards.asMap(), "readerConfigNames": s.readerConfigNames.asMap(), "tokenByHash": s.tokenByHash.asMap(),
		"cardList": s.cardList.asMap(), "cardStatusList": s.cardStatusList.asMap(),
	}
}

// Every table goes through a snapshot and comes back as it was: the same
// JSON form field by field, the same snapshot bytes, the same derived
// indexes, and the restored state goes on applying like the original.
func TestSnapshotRoundTripsEveryTable(t *testing.T) {
	h := richLog(t)
	checkFull(t, h.s)
	b := encode(t, h.s)
	if !bytes.HasPrefix(b, []byte("{\"lintel_state\":3}\n")) {
		t.Fatalf("header: %q", b[:min(len(b), 30)])
	}
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(h.s)
	if js, _ := json.Marshal(got); !bytes.Equal(js, want) {
		t.Fatalf("restored state differs:\n got %s\nwant %s", js, want)
	}
	if !bytes.Equal(encode(t, got), b) {
		t.Fatal("restore then encode gives other bytes")
	}
	if !reflect.DeepEqual(derived(got), derived(h.s)) {
		t.Fatalf("derived indexes differ:\n got %v\nwant %v", derived(got), derived(h.s))
	}
	for i, body := range []command.Body{
		&command.CreateCard{ID: "c-new", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "1001",
			NewCardholder: &command.CreateCardholder{ID: "h-new", FirstName: "A", LastName: "B", Email: "a@b.com"}}, // duplicate private id
		&command.CreateCard{ID: "c-new", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "3001",
			NewCardholder: &command.CreateCardholder{ID: "h-new", FirstName: "A", LastName: "B", Email: "a@b.com"}},
		&command.ActivateCard{LinkHash: got.Cards.At("c-sent").LinkHash, DeviceKey: newPhone(t).public()},
		&command.ExpireLinks{},
	} {
		c := command.Command{Header: command.Header{RequestID: fmt.Sprint("after-", i), Actor: "op", At: h.at.Add(time.Duration(i+1) * time.Minute)}, Body: body}
		r1, _ := h.s.Apply(h.idx+uint64(i)+1, c)
		r2, _ := got.Apply(h.idx+uint64(i)+1, c)
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("%T: %+v on the original, %+v on the restored state", body, r1, r2)
		}
	}
	if !bytes.Equal(encode(t, got), encode(t, h.s)) {
		t.Fatal("restored state diverges")
	}
}

// The same log gives the same snapshot bytes.
func TestSnapshotDeterminism(t *testing.T) {
	h := richLog(t)
	replay := New()
	for i, c := range h.log {
		replay.Apply(uint64(i+1), c)
	}
	if !bytes.Equal(encode(t, replay), encode(t, h.s)) {
		t.Fatal("same log, different bytes")
	}
}

// A Snapshot is a copy: what is applied after it does not change it.
func TestSnapshotIsImmutable(t *testing.T) {
	h := richLog(t)
	sn := h.s.Snapshot()
	want := encode(t, h.s)
	h.mustApply(&command.UpdateCard{ID: "c-fields", AccountID: "acc", Phone: ptr("+44 1")})
	h.mustApply(&command.DeleteCardholder{ID: "h-c-visitor", AccountID: "acc"})
	h.mustApply(&command.MessageDelivered{ID: "m-" + h.s.Cards.At("c-sent").LinkHash})
	h.mustApply(&command.RevokeCard{ID: "c-active", AccountID: "acc"})
	h.mustApply(&command.CreateSite{ID: "site5", AccountID: "acc", Name: "Rome"})
	var buf bytes.Buffer
	if err := sn.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("the snapshot changed with later applies")
	}
	if bytes.Equal(encode(t, h.s), want) {
		t.Fatal("the later applies changed nothing: the test proves nothing")
	}
}

func ptr[T any](v T) *T { return &v }

// A version 1 snapshot (one JSON document, written by the build before
// version 2) still restores. testdata/snapshot-v1.json was written by that
// build from richLog's state.
func TestSnapshotV1StillRestores(t *testing.T) {
	b, err := os.ReadFile("testdata/snapshot-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	header, body, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(header) != `{"lintel_state":1}` {
		t.Fatalf("not a version 1 snapshot: %q", header)
	}
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(got)
	if !bytes.Equal(js, bytes.TrimSpace(body)) {
		t.Fatalf("version 1 restore differs:\n got %s\nwant %s", js, body)
	}
	checkFull(t, got, afterV2...)
	if _, ok := got.OperatorByEmail("james@stid.com"); !ok || got.privateIDs.Len() == 0 || got.cardByLink.Len() == 0 {
		t.Fatal("derived indexes not rebuilt")
	}
	// Written again, it is version 2 and comes back the same.
	v2 := encode(t, got)
	again, err := Decode(bytes.NewReader(v2))
	if err != nil {
		t.Fatal(err)
	}
	if js2, _ := json.Marshal(again); !bytes.Equal(js2, js) {
		t.Fatal("version 1 → 2 → state differs")
	}
}

// A version 2 snapshot (history in commit order, written by the build
// before the history's retention per account) still restores.
// testdata/snapshot-v2.bin was written by that build from richLog's state.
func TestSnapshotV2StillRestores(t *testing.T) {
	b, err := os.ReadFile("testdata/snapshot-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("{\"lintel_state\":2}\n")) {
		t.Fatalf("not a version 2 snapshot: %q", b[:min(len(b), 30)])
	}
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	checkFull(t, got, afterV2...)
	if got.History.Len() == 0 || got.History.count.At("acc") == 0 || got.Cards.Len() == 0 || got.cardList.Len() != got.Cards.Len() {
		t.Fatalf("history %d lines, cards %d, card list %d", got.History.Len(), got.Cards.Len(), got.cardList.Len())
	}
	prev := uint64(0)
	for e := range got.History.Account("acc") {
		if e.Index <= prev {
			t.Fatalf("history of acc out of commit order at index %d", e.Index)
		}
		prev = e.Index
	}
	v3 := encode(t, got)
	again, err := Decode(bytes.NewReader(v3))
	if err != nil {
		t.Fatal(err)
	}
	if js, js2 := mustJSON(t, got), mustJSON(t, again); !bytes.Equal(js, js2) || !bytes.Equal(encode(t, again), v3) {
		t.Fatal("version 2 → 3 → state differs")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotRefusesUnknownVersion(t *testing.T) {
	for _, v := range []int{0, 4, 99} {
		_, err := Decode(strings.NewReader(fmt.Sprintf("{\"lintel_state\":%d}\n{}", v)))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("snapshot version %d is not known to this build", v)) {
			t.Errorf("version %d: %v", v, err)
		}
	}
	for name, bad := range map[string]string{"empty": "", "garbage": "{", "no newline": `{"lintel_state":2}`, "not json": "lintel\n"} {
		if _, err := Decode(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// A damaged snapshot is an error, never a panic or a partial state: every
// truncation, and trailing data.
func TestSnapshotRefusesDamage(t *testing.T) {
	s := richLog(t).s.Clone()
	s.Dedup, s.DedupRetry, s.DedupIdempotent = Table[DedupEntry]{}, List[string]{}, List[string]{} // a shorter JSON part
	b := encode(t, s)
	// Cuts all along the records (every third byte, every byte of the end)
	// and some in the JSON part.
	records := bytes.Index(b, []byte("\x0bcardholders"))
	if records < 0 {
		t.Fatal("no cardholders section")
	}
	for n := 0; n < len(b); n++ {
		if n < records && n%53 != 0 || n < len(b)-64 && n%3 != 0 {
			continue
		}
		if _, err := Decode(bytes.NewReader(b[:n])); err == nil {
			t.Fatalf("decoded %d of %d bytes", n, len(b))
		}
	}
	if _, err := Decode(bytes.NewReader(append(bytes.Clone(b), 0))); err == nil {
		t.Fatal("decoded with trailing data")
	}
	// A huge count with nothing behind it: an error, without allocating for it.
	huge := []byte("{\"lintel_state\":2}\n\x05state\x02{}\x0bcardholders\x80\x80\x80\x80\x80\x01")
	if _, err := Decode(bytes.NewReader(huge)); err == nil || !strings.Contains(err.Error(), "cardholders record 0") {
		t.Fatalf("huge count: %v", err)
	}
	// Flipped bytes: an error or some state, but no panic.
	for i := 20; i < len(b); i += 29 {
		d := bytes.Clone(b)
		d[i] ^= 0x5a
		Decode(bytes.NewReader(d))
	}
}

func FuzzDecode(f *testing.F) {
	var empty bytes.Buffer
	if err := New().Encode(&empty); err != nil {
		f.Fatal(err)
	}
	f.Add(empty.Bytes())
	f.Add([]byte("{\"lintel_state\":2}\n\x05state\x02{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(bytes.NewReader(b))
		if err == nil {
			encode(t, s)
		}
	})
}

// TestSnapshotCodecCoversEveryField round-trips records of the four tables
// with record codecs (snapcodec.go): one with every field set, and for each
// field one with only that field set (maps and lists also empty and not
// nil). A field added to Card, Device, Cardholder, Message or HistoryEntry
// and not to its codec fails here.
func TestSnapshotCodecCoversEveryField(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5400), time.FixedZone("", -(3*3600 + 17))}
	for _, zone := range zones {
		t.Run(zone.String(), func(t *testing.T) {
			codecRoundTrip(t, zone, func(s *State, k string, v Card) { s.Cards.Put(k, v) },
				func(s *State, k string) (Card, bool) { v, ok := s.Cards.Get(k); return v, ok })
			codecRoundTrip(t, zone, func(s *State, k string, v Cardholder) { s.Cardholders.Put(k, v) },
				func(s *State, k string) (Cardholder, bool) { v, ok := s.Cardholders.Get(k); return v, ok })
			codecRoundTrip(t, zone, func(s *State, k string, v Message) { s.Outbox.Put(k, v) },
				func(s *State, k string) (Message, bool) { v, ok := s.Outbox.Get(k); return v, ok })
			// Lines are keyed by account and index: each gets an account of
			// its own (its own, then "/" and the test's key), taken off again.
			codecRoundTrip(t, zone, func(s *State, k string, v HistoryEntry) { v.AccountID += "/" + k; s.History.put(v) },
				func(s *State, k string) (HistoryEntry, bool) {
					for e := range s.History.All() {
						if acc, ok := strings.CutSuffix(e.AccountID, "/"+k); ok {
							e.AccountID = acc
							return e, true
						}
					}
					return HistoryEntry{}, false
				})
		})
	}
}

func codecRoundTrip[T any](t *testing.T, zone *time.Location, put func(*State, string, T), get func(*State, string) (T, bool)) {
	t.Helper()
	typ := reflect.TypeFor[T]()
	seed := 0
	var full T
	fillValue(t, reflect.ValueOf(&full).Elem(), zone, &seed, false)
	records := []T{full, *new(T)}
	for i := range typ.NumField() {
		for _, empty := range []bool{false, true} {
			k := typ.Field(i).Type.Kind()
			if empty && k != reflect.Map && k != reflect.Slice {
				continue
			}
			var r T
			fillValue(t, reflect.ValueOf(&r).Elem().Field(i), zone, &seed, empty)
			records = append(records, r)
		}
	}
	s := New()
	for i, r := range records {
		put(s, fmt.Sprint(i), r) // keys differ from ids: both are kept
	}
	got, err := Decode(bytes.NewReader(encode(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range records {
		back, ok := get(got, fmt.Sprint(i))
		if !ok {
			t.Fatalf("%s %d missing after the round trip", typ.Name(), i)
		}
		if path := differ(reflect.ValueOf(r), reflect.ValueOf(back), typ.Name()); path != "" {
			t.Errorf("%s record %d: %s differs after the round trip:\n sent %+v\n  got %+v", typ.Name(), i, path, r, back)
		}
	}
}

// fillValue sets v to a value no other call gives, not zero; with empty,
// maps and slices are set empty and not nil.
func fillValue(t *testing.T, v reflect.Value, zone *time.Location, seed *int, empty bool) {
	t.Helper()
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d\x00é", n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n) * -1_000_003)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n) * 1_000_003)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(t, p.Elem(), zone, seed, false)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 21, 9, n%60, 7, n*1001, zone)))
			return
		}
		for i := range v.NumField() {
			fillValue(t, v.Field(i), zone, seed, false)
		}
	case reflect.Slice:
		l := 3
		if empty {
			l = 0
		}
		s := reflect.MakeSlice(v.Type(), l, l)
		for i := range l {
			fillValue(t, s.Index(i), zone, seed, false)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 0; i < 3 && !empty; i++ {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fillValue(t, k, zone, seed, false)
			fillValue(t, e, zone, seed, false)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		t.Fatalf("a record field of kind %s: teach fillValue and the snapshot codec", v.Kind())
	}
}

// differ returns the path of the first difference between a and b: times
// must be the same instant with the same offset (what the JSON form keeps),
// nil and empty are different.
func differ(a, b reflect.Value, path string) string {
	if a.Type() == reflect.TypeFor[time.Time]() {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		if !ta.Equal(tb) || ta.Format(time.RFC3339Nano) != tb.Format(time.RFC3339Nano) {
			return path
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() != b.IsNil() {
			return path
		}
		if a.IsNil() {
			return ""
		}
		return differ(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			if p := differ(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
		return ""
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return path
		}
		for i := range a.Len() {
			if p := differ(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
		return ""
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return path
		}
		for _, k := range a.MapKeys() {
			if !b.MapIndex(k).IsValid() {
				return fmt.Sprintf("%s[%v]", path, k)
			}
			if p := differ(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k)); p != "" {
				return p
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return path
	}
	return ""
}

// A restore hands records to its workers in batches of workerBatch: a
// state of several batches comes back whole, and a snapshot cut or damaged
// anywhere in them is refused (or restores something) without a panic, a
// deadlock or a goroutine left behind.
func TestSnapshotRestoresAcrossWorkerBatches(t *testing.T) {
	r := newRegistry(t, 0)
	n := 2*workerBatch + 300
	var rows []command.CreateCard
	for i := range n {
		id := fmt.Sprintf("c%05d", i)
		rows = append(rows, command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London",
			PrivateID: fmt.Sprint(10000 + i), NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "F", LastName: fmt.Sprintf("L%04d", n-i), Email: id + "@example.com"}})
		if len(rows) == 1000 || i == n-1 {
			r.must(&command.ImportCards{Cards: rows})
			rows = nil
		}
	}
	b := encode(t, r.s)
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got.Cards.Len() != n || got.Cardholders.Len() != n || !bytes.Equal(encode(t, got), b) {
		t.Fatalf("restored %d cards, %d cardholders; same bytes %v", got.Cards.Len(), got.Cardholders.Len(), bytes.Equal(encode(t, got), b))
	}
	if !reflect.DeepEqual(derived(got), derived(r.s)) {
		t.Fatal("derived indexes differ after a restore of several batches")
	}
	before := runtime.NumGoroutine()
	records := bytes.Index(b, []byte("\x0bcardholders"))
	for cut := records + 1; cut < len(b); cut += (len(b) - records) / 97 {
		if _, err := Decode(bytes.NewReader(b[:cut])); err == nil {
			t.Fatalf("decoded %d of %d bytes", cut, len(b))
		}
		d := bytes.Clone(b)
		d[cut] ^= 0x5a
		Decode(bytes.NewReader(d))
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after the damaged restores, %d before", g, before)
	}
}
