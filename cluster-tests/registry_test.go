package clustertests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The whole credential flow through the API of a three-node cluster, with
// every step sent to a different node, and the real command-line tools:
// lintel voucher keygen/issue → issuer and voucher → site → reader
// configuration → card → send → the link in the outbox → lintel wallet
// activate → revoke → lintel wallet checkin (deletion receipt) → refund.
// Afterwards every node agrees and its ledger self-check holds.
func TestCredentialFlowOnThreeNodes(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader(10 * time.Second)
	f := c.followers(leader)
	a, b := f[0], f[1]
	dir := t.TempDir()

	voucherText := c.loadCredits(dir, a, b, "PO-2026-1", 50)
	if r := c.raw(leader, 409, "POST", "/api/v1/credits/vouchers", voucherText); r.errCode() != "voucher_used" {
		t.Fatalf("voucher loaded twice: %s", r)
	}

	var site struct{ ID string }
	c.expect(a, 201, "POST", "/api/v1/sites", map[string]string{"name": "London"}).decode(&site)
	c.raw(b, 201, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n")
	var card struct{ ID, Status string }
	c.expect(leader, 201, "POST", "/api/v1/sites/"+site.ID+"/cards", map[string]string{
		"first_name": "Frederick", "last_name": "Blackledge", "email": "fred@example.com", "reader_config": "London", "private_id": "785612",
	}).decode(&card)
	c.expect(a, 200, "POST", "/api/v1/cards/"+card.ID+"/send", nil)

	var outbox struct{ Items []struct{ Body string } }
	c.expect(b, 200, "GET", "/api/v1/outbox?consistency=strong", nil).decode(&outbox)
	if len(outbox.Items) != 1 {
		t.Fatalf("outbox: %+v", outbox)
	}
	url := regexp.MustCompile(`http://\S+/activate/\S+`).FindString(outbox.Items[0].Body)
	wallet := filepath.Join(dir, "wallet.json")
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, url); code != 0 {
		t.Fatalf("wallet activate: %d %s %s", code, out, errs)
	}
	if code, _, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", filepath.Join(dir, "other.json"), url); code != 1 || !strings.Contains(errs, "used") {
		t.Fatalf("a used link activated again: %d %s", code, errs)
	}
	c.expect(leader, 200, "GET", "/api/v1/cards/"+card.ID, nil).decode(&card)
	if card.Status != "activated" {
		t.Fatalf("after activation: %+v", card)
	}

	// Revoke on one node; the phone checks in at another.
	c.expect(b, 200, "POST", "/api/v1/cards/"+card.ID+"/revoke", nil)
	for _, n := range c.nodes {
		c.expect(n, 200, "GET", "/api/v1/cards/"+card.ID+"?consistency=strong", nil).decode(&card)
		if card.Status != "pending_revoke" {
			t.Fatalf("%s sees %s after the revoke", n, card.Status)
		}
	}
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "checkin", "--wallet", wallet, "--node", "http://"+a.http); code != 0 {
		t.Fatalf("wallet checkin: %d %s %s", code, out, errs)
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
		var check struct {
			OK    bool
			Error string
			Index uint64
		}
		c.expect(n, 200, "GET", "/api/v1/self-check?consistency=strong", nil).decode(&check)
		if !check.OK {
			t.Fatalf("%s ledger self-check: %s", n, check.Error)
		}
	}
}

// loadCredits makes an issuer key and a voucher with the real lintel voucher
// commands, trusts the key through one node and loads the voucher through
// another; it returns the voucher's text.
func (c *cluster) loadCredits(dir string, trustVia, loadVia *node, voucherID string, credits int) string {
	t := c.t
	t.Helper()
	key := filepath.Join(dir, "issuer-"+voucherID+".key")
	if code, out, errs := runLintel(t, 20*time.Second, "voucher", "keygen", "--out", key); code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	pub, _ := readFile(key + ".pub")
	c.raw(trustVia, 201, "POST", "/api/v1/credits/issuers?name=integrator", pub)
	var sess struct{ Account struct{ ID string } }
	c.expect(loadVia, 200, "GET", "/api/v1/session", nil).decode(&sess)
	code, text, errs := runLintel(t, 20*time.Second, "voucher", "issue", "--key", key, "--account", sess.Account.ID,
		"--credits", strconv.Itoa(credits), "--id", voucherID)
	if code != 0 {
		t.Fatalf("issue: %d %s", code, errs)
	}
	c.raw(loadVia, 200, "POST", "/api/v1/credits/vouchers", text)
	return text
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
