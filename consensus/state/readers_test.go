package state

import (
	"testing"
	"time"

	"lintel/consensus/command"
)

func TestScheduleOpenAt(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	sc := Schedule{
		Windows:  []command.Window{{Days: []int{1, 2, 3, 4, 5}, From: "08:00", To: "18:00"}, {Days: []int{6}, From: "09:00", To: "24:00"}},
		Holidays: []string{"2026-12-25"},
	}
	cases := []struct {
		at   string // Paris wall time
		open bool
	}{
		{"2026-11-23 08:00", true},  // Monday, opening minute
		{"2026-11-23 07:59", false}, // before
		{"2026-11-23 18:00", false}, // closing minute is closed
		{"2026-11-22 12:00", false}, // Sunday
		{"2026-11-28 23:59", true},  // Saturday until midnight
		{"2026-12-25 10:00", false}, // a Friday, but a holiday
		{"2026-03-30 08:30", true},  // the Monday after the clocks change
	}
	for _, c := range cases {
		local, _ := time.ParseInLocation("2006-01-02 15:04", c.at, paris)
		if got := sc.OpenAt(local.UTC(), paris); got != c.open {
			t.Errorf("%s: open %v, want %v", c.at, got, c.open)
		}
	}
}

func TestReadersSchedulesAccessLevels(t *testing.T) {
	r := newRegistry(t, 0)
	tz := "Europe/Paris"
	r.must(&command.UpdateSite{ID: "site", AccountID: "acc", TimeZone: &tz})
	bad := "Mars/Olympus"
	r.refuse(&command.UpdateSite{ID: "site", AccountID: "acc", TimeZone: &bad}, "invalid_value")
	if r.s.Sites.At("site").Location().String() != "Europe/Paris" {
		t.Fatal("time zone not kept")
	}
	r.must(&command.CreateReader{ID: "front", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Front door", ReaderConfig: "London"})
	if rd := r.s.Readers.At("front"); rd.UnlockSeconds != DefaultUnlockSeconds || rd.Transport != TransportLink {
		t.Fatalf("defaults: %+v", rd)
	}
	r.refuse(&command.CreateReader{ID: "x", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "X", ReaderConfig: "London", UnlockSeconds: 2}, "invalid_value")
	r.refuse(&command.CreateReader{ID: "x", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "X", ReaderConfig: "London", Transport: "ble"}, "invalid_value")
	r.refuse(&command.CreateReader{ID: "x", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "X", ReaderConfig: "Nowhere"}, "reader_config_not_found")
	r.refuse(&command.CreateReader{ID: "x", AccountID: "acc", SiteID: "site", Name: "X", ReaderConfig: "London"}, "required")
	r.must(&command.CreateReader{ID: "lab", AccountID: "acc", SiteID: "site", NodeID: "n2", Name: "Lab", ReaderConfig: "London", Transport: "ble", BLEAdapter: "hci0", UnlockSeconds: 8})
	seven := 7
	r.must(&command.UpdateReader{ID: "lab", AccountID: "acc", UnlockSeconds: &seven})

	r.refuse(&command.CreateSchedule{ID: "s1", AccountID: "acc", SiteID: "site", Name: "Bad", Windows: []command.Window{{Days: []int{1}, From: "18:00", To: "08:00"}}}, "invalid_value")
	r.refuse(&command.CreateSchedule{ID: "s1", AccountID: "acc", SiteID: "site", Name: "Bad", Windows: []command.Window{{Days: []int{7}, From: "08:00", To: "18:00"}}}, "invalid_value")
	r.refuse(&command.CreateSchedule{ID: "s1", AccountID: "acc", SiteID: "site", Name: "Bad", Windows: []command.Window{{Days: []int{1}, From: "08:00", To: "18:00"}}, Holidays: []string{"25/12"}}, "invalid_value")
	r.must(&command.CreateSchedule{ID: "office", AccountID: "acc", SiteID: "site", Name: "Office hours", Windows: []command.Window{{Days: []int{1, 2, 3, 4, 5}, From: "08:00", To: "18:00"}}})
	r.refuse(&command.CreateAccessLevel{ID: "al", AccountID: "acc", SiteID: "site", Name: "Staff", ReaderIDs: []string{"ghost"}}, "reader_not_found")
	r.refuse(&command.CreateAccessLevel{ID: "al", AccountID: "acc", SiteID: "site", Name: "Staff", ReaderIDs: []string{"front"}, ScheduleID: "ghost"}, "schedule_not_found")
	r.must(&command.CreateAccessLevel{ID: "staff", AccountID: "acc", SiteID: "site", Name: "Staff", ReaderIDs: []string{"front", "lab"}, ScheduleID: "office"})

	// A card names access levels of its site only.
	r.refuse(&command.CreateCard{ID: "c", SiteID: "site", AccountID: "acc", Kind: KindDeviceID, AccessLevels: []string{"nope"},
		NewCardholder: &command.CreateCardholder{ID: "h", FirstName: "A", LastName: "B", Email: "a@example.com"}}, "access_level_not_found")
	r.must(&command.CreateCard{ID: "c", SiteID: "site", AccountID: "acc", Kind: KindDeviceID, AccessLevels: []string{"staff"},
		NewCardholder: &command.CreateCardholder{ID: "h", FirstName: "A", LastName: "B", Email: "a@example.com"}})
	// Deleting a reader takes it out of the access levels.
	r.must(&command.DeleteReader{ID: "lab", AccountID: "acc"})
	if al := r.s.AccessLevels.At("staff"); len(al.ReaderIDs) != 1 || al.ReaderIDs[0] != "front" {
		t.Fatalf("access level after deleting a reader: %+v", al)
	}
}

func TestRecordUseCountsToTheLimit(t *testing.T) {
	r := newRegistry(t, 10)
	r.must(&command.CreateCard{ID: "v", SiteID: "site", AccountID: "acc", Kind: KindDeviceID, MaxUses: 2,
		NewCardholder: &command.CreateCardholder{ID: "h", FirstName: "Vi", LastName: "Sitor", Email: "v@example.com"}})
	r.refuse(&command.RecordUse{CardID: "v", ReaderID: "front"}, "not_activated")
	r.must(&command.ActivateCard{LinkHash: r.send("v"), DeviceKey: newPhone(t).public()})
	r.must(&command.RecordUse{CardID: "v", ReaderID: "front"})
	r.must(&command.RecordUse{CardID: "v", ReaderID: "front"})
	r.refuse(&command.RecordUse{CardID: "v", ReaderID: "front"}, "uses_exhausted")
	if c := r.s.Cards.At("v"); c.Uses != 2 {
		t.Fatalf("uses %d", c.Uses)
	}
}

// An offline use was made while the node was cut off: it is counted even
// past the limit, because the door opened.
func TestRecordUseOfflineCountsPastTheLimit(t *testing.T) {
	r := newRegistry(t, 10)
	r.must(&command.CreateCard{ID: "v", SiteID: "site", AccountID: "acc", Kind: KindDeviceID, MaxUses: 1,
		NewCardholder: &command.CreateCardholder{ID: "h", FirstName: "Vi", LastName: "Sitor", Email: "v@example.com"}})
	r.must(&command.ActivateCard{LinkHash: r.send("v"), DeviceKey: newPhone(t).public()})
	r.must(&command.RecordUse{CardID: "v", ReaderID: "front"})
	r.refuse(&command.RecordUse{CardID: "v", ReaderID: "front"}, "uses_exhausted")
	r.must(&command.RecordUse{CardID: "v", ReaderID: "front", Offline: true})
	if c := r.s.Cards.At("v"); c.Uses != 2 {
		t.Fatalf("uses %d, want 2 (one online, one offline past the limit)", c.Uses)
	}
}

func TestEnrollmentAtAnArmedReader(t *testing.T) {
	r := newRegistry(t, 10)
	r.must(&command.CreateReader{ID: "front", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Front door", ReaderConfig: "London"})
	r.must(&command.CreateCardholder{ID: "h", AccountID: "acc", FirstName: "Ada", LastName: "King", Email: "ada@example.com"})
	r.must(&command.CreateCardholder{ID: "v", AccountID: "acc", FirstName: "Vi", LastName: "Sitor", Email: "v@example.com",
		Visitor: true, ValidFrom: ptime(t0), ValidUntil: ptime(t0.Add(48 * time.Hour))})
	p := newPhone(t)
	nonce := make([]byte, 16)
	enroll := func(reader, card string, key []byte, sig []byte) *command.EnrollCard {
		return &command.EnrollCard{ReaderID: reader, CardID: card, DeviceKey: key, Nonce: nonce, Signature: sig}
	}
	good := p.sign(command.EnrollmentMessage(nonce, "front", p.public()))

	// Not armed: refused.
	r.refuse(enroll("front", "c1", p.public(), good), "not_armed")
	// Arming checks the cardholder, the time and the account.
	r.refuse(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "ghost", Until: r.at.Add(time.Minute)}, "cardholder_not_found")
	r.refuse(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "h", Until: r.at.Add(2 * time.Hour)}, "invalid_value")
	r.refuse(&command.ArmEnrollment{ReaderID: "ghost", AccountID: "acc", CardholderID: "h", Until: r.at.Add(time.Minute)}, "reader_not_found")
	r.must(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "h", Until: r.at.Add(time.Minute)})

	// A signature over another reader, or by another key, is refused.
	r.refuse(enroll("front", "c1", p.public(), p.sign(command.EnrollmentMessage(nonce, "back", p.public()))), "bad_signature")
	other := newPhone(t)
	r.refuse(enroll("front", "c1", other.public(), good), "bad_signature")
	r.refuse(enroll("front", "c1", []byte("not a key"), good), "invalid_value")

	before := r.ledger()
	r.must(enroll("front", "c1", p.public(), good))
	c := r.s.Cards.At("c1")
	if c.Status != CardActivated || c.Kind != KindDeviceID || c.CardholderID != "h" || c.SiteID != "site" || c.Device == nil {
		t.Fatalf("enrolled card: %+v", c)
	}
	if !VerifyDevice(c, []byte("m"), p.sign([]byte("m"))) {
		t.Fatal("the card is not bound to the enrolling phone's key")
	}
	cost := r.s.Sites.At("site").CardCost
	if l := r.ledger(); l.Used != before.Used+cost || l.Reserved != before.Reserved || l.Balance != before.Balance-cost {
		t.Fatalf("ledger before %+v after %+v", before, l)
	}
	// The arm is used up: the next phone is not enrolled.
	if r.s.Readers.At("front").Enrollment != nil {
		t.Fatal("reader still armed after an enrollment")
	}
	r.refuse(enroll("front", "c2", p.public(), good), "not_armed")
	// One device card per person.
	r.refuse(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "h", Until: r.at.Add(time.Minute)}, "duplicate_card")

	// A visitor's card takes the visitor's window; an arm expires.
	r.must(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "v", Until: r.at.Add(10 * time.Second)})
	r.at = r.at.Add(time.Minute)
	r.refuse(enroll("front", "c3", p.public(), good), "not_armed")
	r.must(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "v", Until: r.at.Add(time.Minute)})
	r.must(enroll("front", "c3", p.public(), good))
	if c := r.s.Cards.At("c3"); c.ValidUntil == nil || !c.ValidUntil.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("visitor card window: %+v", c.ValidUntil)
	}
	// Disarm.
	r.must(&command.CreateCardholder{ID: "w", AccountID: "acc", FirstName: "Wu", LastName: "Li", Email: "w@example.com"})
	r.refuse(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "w", Until: r.at.Add(time.Minute)}, "insufficient_credit")
	r.load(5)
	r.must(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "w", Until: r.at.Add(time.Minute)})
	r.must(&command.ArmEnrollment{ReaderID: "front", AccountID: "acc", Disarm: true})
	r.refuse(enroll("front", "c4", p.public(), good), "not_armed")
}
