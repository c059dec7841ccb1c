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
	if r.s.Sites["site"].Location().String() != "Europe/Paris" {
		t.Fatal("time zone not kept")
	}
	r.must(&command.CreateReader{ID: "front", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Front door", ReaderConfig: "London"})
	if rd := r.s.Readers["front"]; rd.UnlockSeconds != DefaultUnlockSeconds || rd.Transport != TransportLink {
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
	if al := r.s.AccessLevels["staff"]; len(al.ReaderIDs) != 1 || al.ReaderIDs[0] != "front" {
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
	if c := r.s.Cards["v"]; c.Uses != 2 {
		t.Fatalf("uses %d", c.Uses)
	}
}
