package clustertests

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The reader link with real processes and the real lintel wallet: a card
// activated through the API is presented at readers through node2's
// --readers address; node2 decides only for its own readers; after a revoke
// on node1 the phone is told to delete the card, and its deletion receipt
// confirms the revoke (refund) on every node.
func TestReaderLinkPresentOnThreeNodes(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	dir := t.TempDir()

	c.loadCredits(dir, n1, n1, "PO-READER-1", 50)

	var site struct{ ID string }
	c.expect(n1, 201, "POST", "/api/v1/sites", map[string]string{"name": "London"}).decode(&site)
	c.raw(n1, 201, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n")
	for _, rd := range []struct{ id, node string }{{"door-2", n2.id}, {"door-3", n3.id}} {
		c.expect(n1, 201, "POST", "/api/v1/readers", map[string]any{
			"id": rd.id, "name": rd.id, "node_id": rd.node, "site_id": site.ID, "reader_config": "London", "transport": "link",
		})
	}
	var card struct{ ID, Status string }
	c.expect(n1, 201, "POST", "/api/v1/sites/"+site.ID+"/cards", map[string]string{
		"first_name": "Frederick", "last_name": "Blackledge", "email": "fred@example.com", "reader_config": "London", "private_id": "785612",
	}).decode(&card)
	c.expect(n1, 200, "POST", "/api/v1/cards/"+card.ID+"/send", nil)
	var outbox struct{ Items []struct{ Body string } }
	c.expect(n1, 200, "GET", "/api/v1/outbox?consistency=strong", nil).decode(&outbox)
	if len(outbox.Items) != 1 {
		t.Fatalf("outbox: %+v", outbox)
	}
	url := regexp.MustCompile(`http://\S+/activate/\S+`).FindString(outbox.Items[0].Body)
	wallet := filepath.Join(dir, "wallet.json")
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, url); code != 0 {
		t.Fatalf("wallet activate: %d %s %s", code, out, errs)
	}
	// node2's replica must have the activation before it can decide.
	c.expect(n2, 200, "GET", "/api/v1/cards/"+card.ID+"?consistency=strong", nil)

	present := func(readerID string) (int, map[string]any) {
		t.Helper()
		code, out, errs := runLintel(t, 30*time.Second, "wallet", "present", "--wallet", wallet, "--link", n2.readers, "--reader", readerID)
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("present at %s: %d %q %s", readerID, code, out, errs)
		}
		return code, res
	}
	if code, res := present("door-2"); code != 0 || res["result"] != "granted" {
		t.Fatalf("at node2's reader: %d %v", code, res)
	}
	if code, res := present("door-3"); code != 3 || res["result"] != "denied" || res["reason"] != "wrong_reader" {
		t.Fatalf("node3's reader through node2: %d %v", code, res)
	}

	// max_uses: each use is committed through Raft before the door opens.
	c.expect(n1, 200, "PATCH", "/api/v1/cards/"+card.ID, map[string]any{"max_uses": 2})
	c.expect(n2, 200, "GET", "/api/v1/cards/"+card.ID+"?consistency=strong", nil)
	for i := 1; i <= 2; i++ {
		if code, res := present("door-2"); code != 0 || res["result"] != "granted" {
			t.Fatalf("use %d of 2: %d %v", i, code, res)
		}
	}
	if code, res := present("door-2"); code != 3 || res["reason"] != "uses_exhausted" {
		t.Fatalf("third use of 2: %d %v", code, res)
	}
	var counted struct{ Uses int64 }
	c.expect(n3, 200, "GET", "/api/v1/cards/"+card.ID+"?consistency=strong", nil).decode(&counted)
	if counted.Uses != 2 {
		t.Fatalf("uses seen on node3: %d", counted.Uses)
	}

	c.expect(n1, 200, "POST", "/api/v1/cards/"+card.ID+"/revoke", nil)
	c.expect(n2, 200, "GET", "/api/v1/cards/"+card.ID+"?consistency=strong", nil).decode(&card)
	if card.Status != "pending_revoke" {
		t.Fatalf("node2 sees %s after the revoke", card.Status)
	}
	if code, res := present("door-2"); code != 3 || res["reason"] != "revoked" || res["deleted"] != true || res["receipt"] != "confirmed" {
		t.Fatalf("revoked card: %d %v", code, res)
	}
	if _, out, _ := runLintel(t, 20*time.Second, "wallet", "list", "--wallet", wallet); strings.Contains(out, card.ID) {
		t.Fatalf("the phone still holds the revoked card: %s", out)
	}
	for _, n := range c.nodes {
		c.expect(n, 200, "GET", "/api/v1/cards/"+card.ID+"?consistency=strong", nil).decode(&card)
		var cr struct{ Balance, Reserved, Used, Refunded int64 }
		c.expect(n, 200, "GET", "/api/v1/credits", nil).decode(&cr)
		if card.Status != "revoked" || cr.Balance != 50 || cr.Used != 5 || cr.Refunded != 5 || cr.Reserved != 0 {
			t.Fatalf("%s: card %s, credits %+v", n, card.Status, cr)
		}
	}

	var events struct {
		Items []struct {
			ID         uint64
			NodeID     string `json:"node_id"`
			ReaderID   string `json:"reader_id"`
			CardID     string `json:"card_id"`
			Cardholder string
			Result     string
			Reason     string
		}
	}
	c.expect(n2, 200, "GET", "/api/v1/events", nil).decode(&events)
	var got []string
	for _, e := range events.Items {
		// A reader of another node is refused before the phone names its card.
		if e.NodeID != n2.id || (e.Reason != "wrong_reader" && e.CardID != card.ID) {
			t.Fatalf("event: %+v", e)
		}
		got = append(got, e.ReaderID+":"+e.Result+":"+e.Reason)
	}
	if want := "door-2:granted: door-3:denied:wrong_reader door-2:granted: door-2:granted: door-2:denied:uses_exhausted door-2:denied:revoked"; strings.Join(got, " ") != want {
		t.Fatalf("events on node2: %v, want %s", got, want)
	}
	c.expect(n2, 200, "GET", "/api/v1/events?reader=door-2&result=denied", nil).decode(&events)
	if len(events.Items) != 2 || events.Items[0].Reason != "uses_exhausted" || events.Items[1].Reason != "revoked" {
		t.Fatalf("filtered events: %+v", events.Items)
	}
}
