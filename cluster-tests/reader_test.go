package clustertests

import (
	"encoding/json"
	"fmt"
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

// The door rules, remote unlock, enrollment and the offline-first revoke,
// through real processes and the real lintel wallet.
func TestReaderRulesUnlockEnrollAndOffline(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	dir := t.TempDir()
	c.loadCredits(dir, n1, n1, "PO-READER-2", 100)

	var site struct{ ID string }
	c.expect(n1, 201, "POST", "/api/v1/sites", map[string]string{"name": "Paris"}).decode(&site)
	c.raw(n1, 201, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = Paris\n")
	for _, rd := range []struct{ id, node string }{{"gate-2", n2.id}, {"gate-3", n3.id}} {
		c.expect(n1, 201, "POST", "/api/v1/readers", map[string]any{
			"id": rd.id, "name": rd.id, "node_id": rd.node, "site_id": site.ID, "reader_config": "Paris", "transport": "link", "unlock_seconds": 3,
		})
	}
	// A schedule open on every day but today (UTC, the site's time zone).
	today := int(time.Now().UTC().Weekday())
	var days []int
	for d := range 7 {
		if d != today && d != (today+1)%7 && d != (today+6)%7 { // not around midnight either
			days = append(days, d)
		}
	}
	var sched, level struct{ ID string }
	c.expect(n1, 201, "POST", "/api/v1/schedules", map[string]any{
		"site_id": site.ID, "name": "Not today", "windows": []map[string]any{{"days": days, "from": "00:00", "to": "24:00"}},
	}).decode(&sched)
	c.expect(n1, 201, "POST", "/api/v1/access-levels", map[string]any{
		"site_id": site.ID, "name": "Gate 2 not today", "reader_ids": []string{"gate-2"}, "schedule_id": sched.ID,
	}).decode(&level)

	wallet := filepath.Join(dir, "wallet.json")
	issue := func(pid string, extra map[string]any) string {
		t.Helper()
		body := map[string]any{"first_name": "Card", "last_name": pid, "email": pid + "@example.com", "reader_config": "Paris", "private_id": pid}
		for k, v := range extra {
			body[k] = v
		}
		var card struct{ ID string }
		c.expect(n1, 201, "POST", "/api/v1/sites/"+site.ID+"/cards", body).decode(&card)
		c.expect(n1, 200, "POST", "/api/v1/cards/"+card.ID+"/send", nil)
		var outbox struct {
			Items []struct {
				Body   string
				CardID string `json:"card_id"`
			}
		}
		c.expect(n1, 200, "GET", "/api/v1/outbox?consistency=strong&limit=1000", nil).decode(&outbox)
		var url string
		for _, m := range outbox.Items {
			if m.CardID == card.ID {
				url = regexp.MustCompile(`http://\S+/activate/\S+`).FindString(m.Body)
			}
		}
		if code, out, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, url); code != 0 {
			t.Fatalf("wallet activate %s: %d %s %s", pid, code, out, errs)
		}
		return card.ID
	}
	now := time.Now().UTC()
	ok := issue("1001", nil)
	early := issue("1002", map[string]any{"valid_from": now.Add(time.Hour).Format(time.RFC3339)})
	late := issue("1003", map[string]any{"valid_until": now.Add(-time.Hour).Format(time.RFC3339)})
	scheduled := issue("1004", map[string]any{"access_levels": []string{level.ID}})
	c.expect(n2, 200, "GET", "/api/v1/cards/"+scheduled+"?consistency=strong", nil)

	present := func(readerID, cardID string) (int, map[string]any) {
		t.Helper()
		code, out, errs := runLintel(t, 30*time.Second, "wallet", "present", "--wallet", wallet, "--link", n2.readers, "--reader", readerID, "--card", cardID)
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("present %s at %s: %d %q %s", cardID, readerID, code, out, errs)
		}
		return code, res
	}
	for _, x := range []struct{ card, reason string }{{ok, ""}, {early, "not_yet_valid"}, {late, "expired"}, {scheduled, "outside_schedule"}} {
		code, res := present("gate-2", x.card)
		if x.reason == "" && (code != 0 || res["result"] != "granted") || x.reason != "" && (code != 3 || res["reason"] != x.reason) {
			t.Fatalf("card %s: %d %v, want %q", x.card, code, res, x.reason)
		}
	}

	// Remote unlock: asked on node1, done and logged by node3, which runs gate-3.
	var unlocked struct {
		Kind, By, Result string
		NodeID           string `json:"node_id"`
	}
	c.expect(n1, 200, "POST", "/api/v1/readers/gate-3/unlock", nil).decode(&unlocked)
	if unlocked.Kind != "remote_unlock" || unlocked.NodeID != n3.id || unlocked.By != "admin@lintel.local" || unlocked.Result != "granted" {
		t.Fatalf("remote unlock: %+v", unlocked)
	}
	c.expect(n1, 404, "POST", "/api/v1/readers/nope/unlock", nil)
	var events struct {
		Items []struct {
			Kind, By, Reason, Result string
			ReaderID                 string `json:"reader_id"`
		}
	}
	c.expect(n3, 200, "GET", "/api/v1/events", nil).decode(&events)
	if len(events.Items) != 1 || events.Items[0].Kind != "remote_unlock" || events.Items[0].ReaderID != "gate-3" {
		t.Fatalf("node3 events: %+v", events.Items)
	}

	// Enrollment: gate-2 armed for a cardholder on node1; the next phone
	// presented there (through node2) becomes that person's card.
	var holder struct{ ID string }
	c.expect(n1, 201, "POST", "/api/v1/cardholders", map[string]string{"first_name": "Elena", "last_name": "Rossi", "email": "elena@example.com"}).decode(&holder)
	c.expect(n1, 200, "POST", "/api/v1/readers/gate-2/enroll", map[string]any{"cardholder_id": holder.ID, "seconds": 60})
	c.expect(n2, 200, "GET", "/api/v1/readers?consistency=strong", nil)
	phone := filepath.Join(dir, "phone2.json")
	code, out, errs := runLintel(t, 30*time.Second, "wallet", "enroll", "--wallet", phone, "--link", n2.readers, "--reader", "gate-2")
	var enrolled struct {
		Result string
		CardID string `json:"card_id"`
	}
	if json.Unmarshal([]byte(out), &enrolled); code != 0 || enrolled.Result != "enrolled" {
		t.Fatalf("enroll: %d %s %s", code, out, errs)
	}
	var ec struct{ Status, CardholderID string }
	c.expect(n3, 200, "GET", "/api/v1/cards/"+enrolled.CardID+"?consistency=strong", nil).decode(&ec)
	if ec.Status != "activated" {
		t.Fatalf("enrolled card on node3: %+v", ec)
	}
	if code, out, _ := runLintel(t, 30*time.Second, "wallet", "present", "--wallet", phone, "--link", n2.readers, "--reader", "gate-2"); code != 0 {
		t.Fatalf("enrolled card presented: %d %s", code, out)
	}
	if code, out, _ := runLintel(t, 30*time.Second, "wallet", "enroll", "--wallet", filepath.Join(dir, "phone3.json"), "--link", n2.readers, "--reader", "gate-2"); code != 3 || !strings.Contains(out, "unknown_card") {
		t.Fatalf("a second phone after the arm was used: %d %s", code, out)
	}

	// Offline first: node2 alone (node1 and node3 frozen) has no quorum. A
	// revoke there answers 202, node2's readers deny the card at once, the
	// phone's receipt is kept, and both commit when the quorum is back.
	n1.pause()
	n3.pause()
	eventually(t, 10*time.Second, "node2 loses its quorum", func() error {
		r, err := c.do(n2, "POST", "/api/v1/cards/"+ok+"/revoke", nil)
		if err != nil {
			return err
		}
		if r.status != 202 {
			return fmt.Errorf("revoke answered %d: %s", r.status, r)
		}
		return nil
	})
	if code, res := present("gate-2", ok); code != 3 || res["reason"] != "revoked" || res["deleted"] != true || res["receipt"] != "confirmed" {
		t.Fatalf("revoked offline: %d %v", code, res)
	}
	// Other writes are refused without a quorum.
	c.expect(n2, 503, "POST", "/api/v1/sites", map[string]string{"name": "Nowhere"})
	n1.resume()
	n3.resume()
	eventually(t, 30*time.Second, "the queued revoke and receipt commit", func() error {
		var card struct{ Status string }
		if err := c.expect(n3, 200, "GET", "/api/v1/cards/"+ok+"?consistency=strong", nil).decode(&card); err != nil {
			return err
		}
		if card.Status != "revoked" {
			return fmt.Errorf("card is %s on node3", card.Status)
		}
		return nil
	})
}
