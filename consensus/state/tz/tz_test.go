package tz

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// summer and winter are fixed instants: Paris is UTC+2 at the first and
// UTC+1 at the second, Kiritimati UTC+14 at both.
var (
	summer = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	winter = time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)
)

func offset(loc *time.Location, at time.Time) int {
	_, off := at.In(loc).Zone()
	return off
}

func TestLoad(t *testing.T) {
	paris, err := Load("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if paris.String() != "Europe/Paris" || offset(paris, summer) != 2*3600 || offset(paris, winter) != 3600 {
		t.Fatalf("Europe/Paris: %v, offsets %d and %d", paris, offset(paris, summer), offset(paris, winter))
	}
	if again, _ := Load("Europe/Paris"); again != paris {
		t.Fatal("a second Load does not return the cached location")
	}
	if utc, err := Load("UTC"); err != nil || utc != time.UTC {
		t.Fatalf("UTC: %v, %v", utc, err)
	}
	for _, name := range []string{"America/New_York", "Asia/Kolkata", "Pacific/Kiritimati", "Etc/UTC"} {
		if loc, err := Load(name); err != nil || loc.String() != name {
			t.Errorf("%s: %v, %v", name, loc, err)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	for _, name := range []string{
		"", "Local", "Mars/Olympus", "europe/paris", "Europe", "Europe/",
		"../Europe/Paris", "Europe/../Europe/Paris", "/Europe/Paris", `\Europe\Paris`,
		"/etc/localtime", "/usr/share/zoneinfo/Europe/Paris", "posixrules",
	} {
		loc, err := Load(name)
		if err == nil {
			t.Errorf("%q: loaded %v", name, loc)
			continue
		}
		if want := "unknown time zone \"" + strings.ReplaceAll(name, `\`, `\\`) + "\": use an IANA name such as Europe/Paris"; err.Error() != want {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func TestLoadConcurrent(t *testing.T) {
	names := []string{"Europe/London", "Asia/Tokyo", "America/Sao_Paulo", "Australia/Sydney"}
	got := make([][]*time.Location, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range names {
				l, err := Load(n)
				if err != nil {
					t.Error(err)
				}
				got[i] = append(got[i], l)
			}
		}()
	}
	wg.Wait()
	for i := range got {
		for j := range names {
			if got[i][j] != got[0][j] {
				t.Fatalf("%s loaded twice", names[j])
			}
		}
	}
}

// hostileZip writes a zoneinfo archive in which Europe/Paris holds the data
// of Pacific/Kiritimati (UTC+14) and Lintel/Nowhere exists.
func hostileZip(t *testing.T) string {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(zoneinfo), int64(len(zoneinfo)))
	if err != nil {
		t.Fatal(err)
	}
	var kiritimati []byte
	for _, f := range r.File {
		if f.Name == "Pacific/Kiritimati" {
			rc, _ := f.Open()
			kiritimati, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if kiritimati == nil {
		t.Fatal("no Pacific/Kiritimati in the embedded database")
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

const childZip = "LINTEL_TZ_TEST_HOSTILE_ZIP"

// TestHostZoneDataIgnored points ZONEINFO at an archive that lies about
// Europe/Paris: time.LoadLocation believes it, Load does not. The time
// package reads ZONEINFO once per process, at its first LoadLocation, so the
// check runs in a fresh test process.
func TestHostZoneDataIgnored(t *testing.T) {
	if path := os.Getenv(childZip); path != "" {
		t.Setenv("ZONEINFO", path)
		host, err := time.LoadLocation("Europe/Paris")
		if err != nil || offset(host, summer) != 14*3600 || offset(host, winter) != 14*3600 {
			t.Fatalf("time.LoadLocation ignored ZONEINFO: %v, %v", host, err)
		}
		if _, err := time.LoadLocation("Lintel/Nowhere"); err != nil {
			t.Fatalf("time.LoadLocation ignored ZONEINFO: %v", err)
		}
		paris, err := Load("Europe/Paris")
		if err != nil || offset(paris, summer) != 2*3600 || offset(paris, winter) != 3600 {
			t.Fatalf("Load read the host's data: %v, %v", paris, err)
		}
		if _, err := Load("Lintel/Nowhere"); err == nil {
			t.Fatal("Load found a zone only the host has")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostZoneDataIgnored$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childZip+"="+hostileZip(t))
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestHostZoneDataIgnored")) {
		t.Fatalf("%v\n%s", err, out)
	}
}
