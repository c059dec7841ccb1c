package node_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lintel/internal/testnode"
	"lintel/node"
	"lintel/reader"
)

// A remote unlock through the API releases the relay wired with --door for
// the reader's unlock time, lights green, and locks again by itself;
// stopping the node leaves the door locked.
func TestRemoteUnlockDrivesTheRelay(t *testing.T) {
	dir := t.TempDir()
	line := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("1"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	relay, green := line("relay"), line("green")
	n := testnode.StartWith(t, "n1", func(c *node.Config) {
		c.Doors = map[string]reader.RelayWiring{"front": {Relay: relay, Green: green}}
	})
	testnode.WaitReady(t, n)
	level := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	if level(relay) != "0" {
		t.Fatal("relay energised at start")
	}
	c := testnode.Login(t, n)
	var site struct{ ID string }
	r := c.Do(t, "POST", "/api/v1/sites", `{"name":"HQ"}`, nil)
	json.Unmarshal([]byte(r.Body), &site)
	if r = c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = HQ\n", nil); r.StatusCode != 201 {
		t.Fatalf("reader config: %d %s", r.StatusCode, r.Body)
	}
	r = c.Do(t, "POST", "/api/v1/readers", `{"id":"front","name":"Front","node_id":"n1","site_id":"`+site.ID+`","reader_config":"HQ","unlock_seconds":3}`, nil)
	if r.StatusCode != 201 {
		t.Fatalf("reader: %d %s", r.StatusCode, r.Body)
	}
	if r = c.Do(t, "POST", "/api/v1/readers/front/unlock", "", nil); r.StatusCode != 200 {
		t.Fatalf("unlock: %d %s", r.StatusCode, r.Body)
	}
	start := time.Now()
	if level(relay) != "1" || level(green) != "1" {
		t.Fatalf("after unlock: relay %q green %q", level(relay), level(green))
	}
	testnode.Eventually(t, 10*time.Second, func() bool { return level(relay) == "0" }, "relay locks again")
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Fatalf("relay locked after %s, want the 3 s unlock time", d)
	}
	var evs struct {
		Items []reader.Event `json:"items"`
	}
	r = c.Do(t, "GET", "/api/v1/events", "", nil)
	if json.Unmarshal([]byte(r.Body), &evs); len(evs.Items) != 1 || evs.Items[0].Kind != reader.KindRemoteUnlock || evs.Items[0].By != testnode.AdminEmail {
		t.Fatalf("events: %s", r.Body)
	}
	// A BLE reader on a machine without Bluetooth: the adapter cannot be
	// opened (logged); the node and its other readers go on.
	r = c.Do(t, "POST", "/api/v1/readers", `{"id":"lab","name":"Lab","node_id":"n1","site_id":"`+site.ID+`","reader_config":"HQ","transport":"ble","ble_adapter":"hci0"}`, nil)
	if r.StatusCode != 201 {
		t.Fatalf("BLE reader: %d %s", r.StatusCode, r.Body)
	}
	if r = c.Do(t, "POST", "/api/v1/readers/lab/unlock", "", nil); r.StatusCode != 200 {
		t.Fatalf("unlock of the BLE reader's door: %d %s", r.StatusCode, r.Body)
	}
	testnode.WaitReady(t, n)
	c.Do(t, "POST", "/api/v1/readers/front/unlock", "", nil)
	n.Stop()
	if level(relay) != "0" {
		t.Fatal("the door stayed open after the node stopped")
	}
}
