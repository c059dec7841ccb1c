package state

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"lintel/consensus/command"
)

const childHostileZip = "LINTEL_STATE_TEST_HOSTILE_ZIP"

// A node whose zoneinfo lies about Europe/Paris (ZONEINFO points at an
// archive holding Pacific/Kiritimati, UTC+14, under that name) still stores
// and decides with the real Paris. The time package reads ZONEINFO once per
// process, at its first LoadLocation, so the check runs in a fresh process.
func TestUpdateSiteIgnoresHostZoneData(t *testing.T) {
	if path := os.Getenv(childHostileZip); path != "" {
		hostileNode(t, path)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUpdateSiteIgnoresHostZoneData$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childHostileZip+"="+writeHostileZip(t))
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestUpdateSiteIgnoresHostZoneData")) {
		t.Fatalf("%v\n%s", err, out)
	}
}

func hostileNode(t *testing.T, path string) {
	t.Setenv("ZONEINFO", path)
	// Monday 2025-07-07 07:30 UTC: 09:30 in Paris (UTC+2), 21:30 in Kiritimati.
	at := time.Date(2025, 7, 7, 7, 30, 0, 0, time.UTC)
	// The host's data is what time.LoadLocation would have used.
	if host, err := time.LoadLocation("Europe/Paris"); err != nil || at.In(host).Hour() != 21 {
		t.Fatalf("time.LoadLocation ignored ZONEINFO: %v, %v", host, err)
	}
	if _, err := time.LoadLocation("Lintel/Nowhere"); err != nil {
		t.Fatalf("time.LoadLocation ignored ZONEINFO: %v", err)
	}

	r := newRegistry(t, 0)
	paris := "Europe/Paris"
	r.must(&command.UpdateSite{ID: "site", AccountID: "acc", TimeZone: &paris})
	nowhere := "Lintel/Nowhere" // only the host has it
	r.refuse(&command.UpdateSite{ID: "site", AccountID: "acc", TimeZone: &nowhere}, "invalid_value")

	office := Schedule{Windows: []command.Window{{Days: []int{1, 2, 3, 4, 5}, From: "08:00", To: "18:00"}}}
	check := func(s *State, when string) {
		t.Helper()
		site := s.Sites.At("site")
		loc := site.Location()
		if site.TimeZone != "Europe/Paris" || loc.String() != "Europe/Paris" || at.In(loc).Hour() != 9 {
			t.Fatalf("%s: site zone %q, location %v, %v there", when, site.TimeZone, loc, at.In(loc))
		}
		if !office.OpenAt(at, loc) {
			t.Fatalf("%s: office hours closed at 09:30 in Paris", when)
		}
	}
	check(r.s, "applied")
	var buf bytes.Buffer
	if err := r.s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	check(restored, "restored")
}

// writeHostileZip writes a zoneinfo archive in which Europe/Paris and
// Lintel/Nowhere hold the data of Pacific/Kiritimati, taken from the
// embedded database's file.
func writeHostileZip(t *testing.T) string {
	t.Helper()
	zr, err := zip.OpenReader(filepath.Join("tz", "zoneinfo.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	rc, err := zr.Open("Pacific/Kiritimati")
	if err != nil {
		t.Fatal(err)
	}
	kiritimati, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, name := range []string{"Europe/Paris", "Lintel/Nowhere"} {
		// Stored, not deflated: the time package reads only stored entries.
		fw, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(kiritimati)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hostile.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
