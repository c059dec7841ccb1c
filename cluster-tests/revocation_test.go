package clustertests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// doorCard is a card activated on a phone, for a reader run by one node.
type doorCard struct {
	id, wallet, reader string
	at                 *node // the node that runs the reader
}

// activateAtReader makes a site, a link reader run by at, and a card
// activated in a real lintel wallet.
func (c *cluster) activateAtReader(dir string, via, at *node) doorCard {
	t := c.t
	t.Helper()
	c.loadCredits(dir, via, via, "PO-"+at.id+"-"+fmt.Sprint(time.Now().UnixNano()), 50)
	var site struct{ ID string }
	c.expect(via, 201, "POST", "/api/v1/sites", map[string]string{"name": "Site " + at.id}).decode(&site)
	c.raw(via, 201, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = Doors\n")
	reader := "door-" + at.id
	c.expect(via, 201, "POST", "/api/v1/readers", map[string]any{
		"id": reader, "name": reader, "node_id": at.id, "site_id": site.ID, "reader_config": "Doors", "transport": "link",
	})
	var card struct{ ID string }
	c.expect(via, 201, "POST", "/api/v1/sites/"+site.ID+"/cards", map[string]string{
		"first_name": "Ada", "last_name": "Door", "email": "ada@example.com", "reader_config": "Doors", "private_id": "4242",
	}).decode(&card)
	c.expect(via, 200, "POST", "/api/v1/cards/"+card.ID+"/send", nil)
	var outbox struct{ Items []struct{ Body string } }
	c.expect(via, 200, "GET", "/api/v1/outbox?consistency=strong", nil).decode(&outbox)
	var url string
	for _, m := range outbox.Items {
		if u := regexp.MustCompile(`http://\S+/activate/\S+`).FindString(m.Body); u != "" {
			url = u
		}
	}
	wallet := filepath.Join(dir, "wallet-"+at.id+".json")
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, url); code != 0 {
		t.Fatalf("wallet activate: %d %s %s", code, out, errs)
	}
	c.expect(at, 200, "GET", "/api/v1/cards/"+card.ID+"?consistency=strong", nil)
	return doorCard{id: card.ID, wallet: wallet, reader: reader, at: at}
}

// present shows the card at its reader and returns the verdict.
func (c *cluster) present(d doorCard) map[string]any {
	t := c.t
	t.Helper()
	code, out, errs := runLintel(t, 30*time.Second, "wallet", "present", "--wallet", d.wallet, "--link", d.at.readers, "--reader", d.reader)
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("present at %s: %d %q %s", d.reader, code, out, errs)
	}
	return res
}

// A card revoked and applied on a node is denied by that node's door from
// its first presentation after the node was killed and restarted cut off
// from the others: with a snapshot taken before the revoke, with no
// snapshot at all, and with the node's disk full.
func TestRevokedCardDeniedAfterCutOffRestart(t *testing.T) {
	for _, tc := range []struct {
		name           string
		snapshot, full bool
	}{{"snapshot", true, false}, {"no-snapshot", false, false}, {"disk-full", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3)
			n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
			if tc.full {
				mountTmpfs(t, n3.dir, "64m")
			}
			startNodes(c)
			dir := t.TempDir()
			card := c.activateAtReader(dir, n1, n3)
			if res := c.present(card); res["result"] != "granted" {
				t.Fatalf("before the revoke: %v", res)
			}
			if tc.snapshot {
				c.expect(n3, 200, "POST", "/api/v1/cluster/snapshot", nil)
			}
			c.expect(n1, 200, "POST", "/api/v1/cards/"+card.id+"/revoke", nil)
			var seen struct{ Status string }
			c.expect(n3, 200, "GET", "/api/v1/cards/"+card.id+"?consistency=strong", nil).decode(&seen)
			if seen.Status != "pending_revoke" {
				t.Fatalf("node3 sees %s", seen.Status)
			}
			var filler string
			if tc.full {
				filler = fillDisk(t, n3.dir)
			}
			n3.kill()
			n1.pause()
			n2.pause()
			n3.start("")
			c.waitHealthy(n3, 20*time.Second)
			res := c.present(card)
			if res["result"] != "denied" || res["reason"] != "revoked" {
				t.Fatalf("first presentation after the restart: %v", res)
			}
			if tc.full {
				// The denial's event is written, or held and counted: never lost silently.
				var ev struct {
					Items []struct{ CardID, Reason string }
				}
				c.expect(n3, 200, "GET", "/api/v1/events?card_id="+card.id, nil).decode(&ev)
				written := false
				for _, e := range ev.Items {
					written = written || e.Reason == "revoked"
				}
				held, _ := c.metric(n3, "lintel_events_unwritten")
				if !written && held < 1 {
					t.Fatalf("the denial's event is neither written (%+v) nor held (%v)", ev.Items, held)
				}
				t.Logf("disk full: event written %v, held %v", written, held)
				os.Remove(filler)
			}
			n1.resume()
			n2.resume()
			c.waitReady(n3, 30*time.Second)
		})
	}
}

// mountTmpfs puts dir on a tmpfs of the given size, unmounted at the end.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("a full disk needs a tmpfs (run as root): mount: %v %s", err, out)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if syscall.Unmount(dir, 0) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Unmount(dir, syscall.MNT_DETACH)
	})
}

// fillDisk writes a file until the file system is full and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	for _, n := range []int{4096, 512, 1} { // the last bytes
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return p
}

// The leader is frozen (SIGSTOP about 1 s, then SIGCONT) 150 times in a
// row, a write between freezes. Afterwards every node commits a write
// within 1 s and the digests agree (at the end of every cluster test).
func TestLeaderFrozen150Times(t *testing.T) {
	c := startCluster(t, 3)
	rounds := 150
	if testing.Short() {
		rounds = 20
	}
	quick := &http.Client{Transport: c.client.Transport, Timeout: time.Second}
	leaderOf := func() *node {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			for _, n := range c.nodes {
				if n.paused {
					continue
				}
				r, err := c.doWith(context.Background(), quick, n, "GET", "/readyz", nil)
				var ready struct{ Leader string }
				if err == nil && r.status == 200 && json.Unmarshal(r.body, &ready) == nil && ready.Leader != "" {
					if l := c.byID(ready.Leader); !l.paused {
						return l
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no leader among the running nodes for 20 s")
		return nil
	}
	changes := 0
	prev := ""
	for i := 0; i < rounds; i++ {
		l := leaderOf()
		if l.id != prev {
			changes++
			prev = l.id
		}
		l.pause()
		time.Sleep(time.Second)
		l.resume()
		if _, _, err := c.writeUntilAccepted(c.nodes[i%3], fmt.Sprintf("Freeze %d", i), 20*time.Second, 20*time.Millisecond); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	t.Logf("%d freezes, %d different leaders in a row", rounds, changes)
	for _, n := range c.nodes {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := c.doWith(ctx, c.client, n, "POST", "/api/v1/sites", map[string]string{"name": "After " + n.id})
		cancel()
		if err != nil || r.status != 201 {
			t.Fatalf("%s: write after the freezes: %v %v", n, err, r)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s: write took %v", n, d)
		}
	}
	for _, n := range c.nodes {
		if strings.Contains(tail(n.logPath, 400), "panic") {
			t.Fatalf("%s logged a panic", n)
		}
	}
}
