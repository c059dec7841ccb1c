package reader

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseDoorFlag(t *testing.T) {
	id, w, err := ParseDoorFlag("front=relay:/sys/class/gpio/gpio17/value,green:/g,red:/r")
	if err != nil || id != "front" || w.Relay != "/sys/class/gpio/gpio17/value" || w.Green != "/g" || w.Red != "/r" || w.Amber != "" {
		t.Fatalf("%q %+v %v", id, w, err)
	}
	for _, bad := range []string{"front", "=relay:/x", "front=green:/g", "front=relay:/a,relay:/b", "front=horn:/h", "front=relay"} {
		if _, _, err := ParseDoorFlag(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// lines makes output "lines" as files, as a sysfs GPIO value file is.
func lines(t *testing.T, names ...string) map[string]string {
	dir := t.TempDir()
	m := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("1"), 0o600); err != nil {
			t.Fatal(err)
		}
		m[n] = p
	}
	return m
}

func level(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRelayDoors(t *testing.T) {
	l := lines(t, "relay", "amber", "green", "red")
	w := RelayWiring{Relay: l["relay"], Amber: l["amber"], Green: l["green"], Red: l["red"]}
	fallback := &recordDoor{}
	d, err := NewRelayDoors(map[string]RelayWiring{"front": w}, fallback, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Fail-secure at start: every line off.
	for n, p := range l {
		if level(t, p) != "0" {
			t.Fatalf("%s on at start", n)
		}
	}
	d.Show("front", FeedbackConnecting)
	if level(t, l["amber"]) != "1" || level(t, l["green"]) != "0" {
		t.Fatal("amber not shown")
	}
	d.Unlock("front", 300*time.Millisecond)
	d.Show("front", FeedbackGranted)
	if level(t, l["relay"]) != "1" || level(t, l["green"]) != "1" || level(t, l["amber"]) != "0" {
		t.Fatal("door not released with green")
	}
	// A second unlock while open extends the unlock.
	time.Sleep(200 * time.Millisecond)
	d.Unlock("front", 300*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	if level(t, l["relay"]) != "1" {
		t.Fatal("relay dropped before the extended unlock time")
	}
	waitFor(t, func() bool { return level(t, l["relay"]) == "0" && level(t, l["green"]) == "0" })
	d.Show("front", FeedbackDenied)
	if level(t, l["red"]) != "1" || level(t, l["relay"]) != "0" {
		t.Fatal("red not shown, or the door opened")
	}
	// Readers without wiring go to the fallback driver.
	d.Unlock("back", time.Second)
	if got := fallback.take(); len(got) != 1 || got[0] != "unlock back 1s" {
		t.Fatalf("fallback %q", got)
	}
	// Close locks the door at once.
	d.Unlock("front", time.Hour)
	d.Close()
	if level(t, l["relay"]) != "0" || level(t, l["red"]) != "0" {
		t.Fatal("Close left the door open or an LED on")
	}
	// A line that does not exist is refused at start, not created.
	if _, err := NewRelayDoors(map[string]RelayWiring{"x": {Relay: filepath.Join(t.TempDir(), "gpio99", "value")}}, nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a missing line was accepted")
	}
}
