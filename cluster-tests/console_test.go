package clustertests

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// An operator works in the console of one building while a card is
// activated and revoked through another: the card list follows live,
// without a reload, in the seed's words.
func TestConsoleCardListFollowsLive(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	dir := t.TempDir()
	c.loadCredits(dir, n1, n1, "PO-console-1", 50)

	b := newBrowser(t)
	b.login(c.url(n2), adminEmail, adminPassword)
	b.shot("sites")

	// A site through the form of node2's console.
	b.fill("#name", "London")
	b.click(`form[action="/sites"] button`)
	sites, err := c.sites(n1, true)
	if err != nil {
		t.Fatal(err)
	}
	var siteID string
	for id, name := range sites {
		if name == "London" {
			siteID = id
		}
	}
	if siteID == "" {
		t.Fatalf("the site added in the console is not in the cluster: %v", sites)
	}
	c.raw(n1, 201, "POST", "/api/v1/sites/"+siteID+"/reader-configs", "lintel-reader-config 1\nname = London\n")
	var card struct{ ID string }
	c.expect(n1, 201, "POST", "/api/v1/sites/"+siteID+"/cards", map[string]string{
		"first_name": "Claudia", "last_name": "Green", "email": "claudia@example.com", "reader_config": "London", "private_id": "127496",
	}).decode(&card)
	row := `#card-` + card.ID + ` td.status`

	b.open(c.url(n2) + "/sites/" + siteID + "/cards")
	if s := b.text(row); s != "Created" {
		t.Fatalf("a new card shows %q, want Created", s)
	}
	b.waitLive(c, n2)
	before := b.text(`#credits-available`)

	// Send from the row's own button: the page after the post says so.
	b.click(`#card-` + card.ID + ` button[value^="send "]`)
	if !b.has("#notice") {
		t.Fatal("no notice after Send")
	}
	b.waitText(row, "Created and Email Sent", 5*time.Second)
	if after := b.text(`#credits-available`); after == before {
		t.Errorf("the available credit in the header did not move after a send: %s", after)
	}
	b.shot("cards")

	// The phone redeems the link at node1; node2's page turns Activated live.
	b.waitLive(c, n2)
	var outbox struct{ Items []struct{ Body string } }
	c.expect(n1, 200, "GET", "/api/v1/outbox?consistency=strong", nil).decode(&outbox)
	link := ""
	for _, m := range outbox.Items {
		if u := regexp.MustCompile(`http://\S+/activate/\S+`).FindString(m.Body); u != "" {
			link = u
		}
	}
	wallet := filepath.Join(dir, "wallet.json")
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, link); code != 0 {
		t.Fatalf("wallet activate: %d %s %s", code, out, errs)
	}
	b.waitText(row, "Activated", 5*time.Second)

	// Revoke with the box and the bulk button: Pending Revoke, then the
	// phone checks in at node1 and node2's page shows Revoked.
	b.tick("#pick-" + card.ID)
	b.click(".bulk button[value=revoke]")
	if !b.has("#notice") {
		t.Fatal("no notice after Revoke")
	}
	b.waitText(row, "Pending Revoke", 5*time.Second)
	b.waitLive(c, n2)
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "checkin", "--wallet", wallet, "--node", c.url(n1)); code != 0 {
		t.Fatalf("wallet checkin: %d %s %s", code, out, errs)
	}
	b.waitText(row, "Revoked", 5*time.Second)

	// Revoke again is not offered; a refused bulk action says why on the row.
	if b.has(`#card-` + card.ID + ` button[value^="revoke "]`) {
		t.Error("a revoked card's row offers Revoke")
	}
	b.tick("#pick-" + card.ID)
	b.click(".bulk button[value=revoke]")
	if s := b.text(`#error`); !strings.Contains(strings.ToLower(s), "only an activated card can be revoked") {
		t.Errorf("refused revoke says %q", s)
	}
	wide, err := b.overflowAt(390)
	if err != nil || wide {
		t.Errorf("the card list scrolls sideways at 390 px (%v)", err)
	}
}
