package wallet

import (
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"lintel/consensus/state"
	"lintel/wallet/wallettest"
)

// TestAgainstNode runs the phone's whole life of a card against a real node:
// activation (credits debited), a refused second activation, a revoke
// completed by check-in (credits refunded), and the cards a node deleted or
// marked lost.
func TestAgainstNode(t *testing.T) {
	s := wallettest.Setup(t, "w1")
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "wallet.json")

	cardID, link := s.IssueCard(t, "Ada", "Lovelace", "1234")
	if cr := s.Credits(t); cr.Reserved != 5 || cr.Used != 0 {
		t.Fatalf("after send: %+v", cr)
	}

	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.Activate(ctx, link)
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	if c.CardID != cardID || c.Status != "activated" || c.Site != "Headquarters" || c.SiteID != s.SiteID ||
		c.ReaderConfig != "London" || c.PrivateID != "1234" || c.FirstName != "Ada" || c.LastName != "Lovelace" ||
		c.Kind != "private_id" || c.NodeURL != s.URL || c.ActivatedAt.IsZero() {
		t.Fatalf("stored card: %+v", c)
	}
	nc := s.Card(t, cardID)
	if nc.Status != "activated" || nc.Device == nil || nc.Device.PublicKey != base64.StdEncoding.EncodeToString(c.PublicKeyDER()) {
		t.Fatalf("card on the node: %+v (wallet key %x)", nc, c.PublicKeyDER())
	}
	if cr := s.Credits(t); cr.Used != 5 || cr.Reserved != 0 || cr.Refunded != 0 {
		t.Fatalf("after activation: %+v", cr)
	}
	assertMode(t, path)

	// The key survives a reload and signs as the node verifies.
	w, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	held, ok := w.Card(cardID)
	if !ok || len(w.Cards()) != 1 {
		t.Fatalf("reloaded wallet: %+v", w.Cards())
	}
	der, _ := base64.StdEncoding.DecodeString(nc.Device.PublicKey)
	msg := []byte("nonce, reader id and card id")
	sig, err := held.Sign(msg)
	if err != nil || !state.VerifyDevice(state.Card{Device: &state.Device{PublicKey: der}}, msg, sig) {
		t.Fatalf("signature does not verify on the node's terms: %v", err)
	}

	// The link is single use: the node's reason comes back. (The node
	// forgets a link's hash once it is used, so it answers 404
	// link_not_found rather than 409 link_used; both say "already used".)
	_, err = w.Activate(ctx, link)
	var se *ServerError
	if !errors.As(err, &se) || (se.Code != "link_used" && se.Code != "link_not_found") || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second activation: %v", err)
	}
	if len(w.Cards()) != 1 || len(w.pending) != 0 {
		t.Fatalf("a refused activation changed the wallet: %d cards, %d pending", len(w.Cards()), len(w.pending))
	}

	// Nothing to do while the card is active.
	res, err := w.Checkin(ctx, s.URL)
	if err != nil || len(res) != 1 || res[0] != (CheckinResult{CardID: cardID, Status: "activated", Action: ActionKept}) {
		t.Fatalf("check-in of an active card: %+v %v", res, err)
	}

	// Revoke: the check-in deletes the card and the receipt completes the revoke.
	s.Do(t, "POST", "/api/v1/cards/"+cardID+"/revoke", "", 200, nil)
	if cr := s.Credits(t); cr.Refunded != 0 {
		t.Fatalf("refund before the receipt: %+v", cr)
	}
	res, err = w.Checkin(ctx, s.URL+"/")
	want := CheckinResult{CardID: cardID, Status: "revoked", Action: ActionDeleted, Receipt: ReceiptConfirmed}
	if err != nil || len(res) != 1 || res[0] != want {
		t.Fatalf("check-in after revoke: %+v %v", res, err)
	}
	if len(w.Cards()) != 0 || len(w.cards) != 0 {
		t.Fatalf("the card is still in the wallet: %+v", w.cards)
	}
	if nc := s.Card(t, cardID); nc.Status != "revoked" {
		t.Fatalf("card on the node after the receipt: %+v", nc)
	}
	if cr := s.Credits(t); cr.Used != 5 || cr.Refunded != 5 {
		t.Fatalf("after the receipt: %+v", cr)
	}
	w, err = Open(path)
	if err != nil || len(w.cards) != 0 {
		t.Fatalf("reloaded wallet after the deletion: %+v %v", w.cards, err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), cardID) {
		t.Fatalf("the wallet file still names the deleted card:\n%s", data)
	}
	if res, err := w.Checkin(ctx, s.URL); err != nil || len(res) != 0 {
		t.Fatalf("check-in of an empty wallet: %+v %v", res, err)
	}

	// A card deleted on the node is removed without a receipt; a lost card
	// is deleted, and the node wants no receipt for it.
	goneID, goneLink := s.IssueCard(t, "Grace", "Hopper", "2345")
	lostID, lostLink := s.IssueCard(t, "Alan", "Turing", "3456")
	keptID, keptLink := s.IssueCard(t, "Edsger", "Dijkstra", "4567")
	for _, l := range []string{goneLink, lostLink, keptLink} {
		if _, err := w.Activate(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	s.Do(t, "DELETE", "/api/v1/cards/"+goneID, "", 204, nil)
	s.Do(t, "POST", "/api/v1/cards/"+lostID+"/revoke", "", 200, nil)
	s.Do(t, "POST", "/api/v1/cards/"+lostID+"/lost", "", 200, nil)
	res, err = w.Checkin(ctx, s.URL)
	if err != nil {
		t.Fatalf("check-in: %+v %v", res, err)
	}
	got := map[string]CheckinResult{}
	for _, r := range res {
		got[r.CardID] = r
	}
	if got[goneID] != (CheckinResult{CardID: goneID, Status: "deleted", Action: ActionRemoved}) ||
		got[lostID] != (CheckinResult{CardID: lostID, Status: "lost", Action: ActionDeleted, Receipt: ReceiptNotNeeded}) ||
		got[keptID] != (CheckinResult{CardID: keptID, Status: "activated", Action: ActionKept}) || len(res) != 3 {
		t.Fatalf("check-in: %+v", res)
	}
	if cards := w.Cards(); len(cards) != 1 || cards[0].CardID != keptID {
		t.Fatalf("left in the wallet: %+v", cards)
	}
	if cr := s.Credits(t); cr.Used != 20 || cr.Refunded != 5 || cr.Lost != 10 {
		t.Fatalf("ledger: %+v", cr)
	}
}

// TestActivateAnswerLost loses the node's answer to an activation that went
// through: the wallet keeps the key, and running the activation again gets
// the card (the node answers the same Idempotency-Key with its first answer)
// instead of link_used.
func TestActivateAnswerLost(t *testing.T) {
	s := wallettest.Setup(t, "w2")
	cardID, link := s.IssueCard(t, "Ada", "Lovelace", "1234")

	target, _ := url.Parse(s.URL)
	var calls atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(*http.Response) error {
		if calls.Add(1) == 1 {
			return errors.New("answer lost")
		}
		return nil
	}
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	ps := newServer(t, proxy)
	link = strings.Replace(link, s.URL, ps.URL, 1)

	path := filepath.Join(t.TempDir(), "wallet.json")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Activate(t.Context(), link)
	if !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "502") {
		t.Fatalf("first try: %v", err)
	}
	if nc := s.Card(t, cardID); nc.Status != "activated" {
		t.Fatalf("the node did not activate: %+v", nc)
	}
	// A fresh process picks the pending activation up from the file.
	w, err = Open(path)
	if err != nil || len(w.pending) != 1 {
		t.Fatalf("pending activation not kept: %v", err)
	}
	c, err := w.Activate(t.Context(), link)
	if err != nil {
		t.Fatalf("second try: %v", err)
	}
	if nc := s.Card(t, cardID); c.CardID != cardID || nc.Device.PublicKey != base64.StdEncoding.EncodeToString(c.PublicKeyDER()) {
		t.Fatalf("card %+v, node %+v", c, nc)
	}
	if len(w.pending) != 0 {
		t.Fatal("pending activation left behind")
	}
	if cr := s.Credits(t); cr.Used != 5 {
		t.Fatalf("ledger: %+v", cr)
	}
}

// A node of another cluster does not know this phone's cards: checking in
// there keeps them (the wallet knows which cluster issued each card).
func TestCheckinAtAnotherClusterKeepsTheCards(t *testing.T) {
	a := wallettest.Setup(t, "wa")
	b := wallettest.Setup(t, "wb")
	ctx := t.Context()
	w, err := Open(filepath.Join(t.TempDir(), "wallet.json"))
	if err != nil {
		t.Fatal(err)
	}
	id, link := a.IssueCard(t, "Ada", "Lovelace", "1234")
	c, err := w.Activate(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster == "" {
		t.Fatal("the activation did not name the cluster")
	}
	res, err := w.Checkin(ctx, b.URL)
	if err != nil || len(res) != 1 || res[0].Action != ActionKept || len(w.Cards()) != 1 {
		t.Fatalf("check-in at another cluster: %+v %v", res, err)
	}
	// At its own cluster a deleted card still goes.
	a.Do(t, "DELETE", "/api/v1/cards/"+id, "", 204, nil)
	if res, err := w.Checkin(ctx, a.URL); err != nil || len(res) != 1 || res[0].Action != ActionRemoved || len(w.Cards()) != 0 {
		t.Fatalf("check-in at its own cluster: %+v %v", res, err)
	}
}
