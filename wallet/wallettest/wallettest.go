// Package wallettest sets up a real in-process node for wallet tests, only
// through its API: a trusted credit issuer, a loaded voucher, a site with a
// reader configuration, and cards sent to a phone.
package wallettest

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"lintel/consensus/state/voucher"
	"lintel/internal/testnode"
	"lintel/node"
	"lintel/voucherkey"
)

// Site is a ready node with an account holding 100 credits and one site with
// the reader configuration "London".
type Site struct {
	Node      *node.Node
	Client    *testnode.Client
	URL       string // http://host:port of the node
	AccountID string
	SiteID    string
}

// Setup starts node id and prepares a Site on it.
func Setup(t testing.TB, id string) *Site {
	t.Helper()
	n := testnode.Start(t, id)
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	s := &Site{Node: n, Client: c, URL: c.Base}

	var session struct {
		Account struct {
			ID string `json:"id"`
		} `json:"account"`
	}
	s.Do(t, "GET", "/api/v1/session", "", 200, &session)
	s.AccountID = session.Account.ID

	key, err := voucherkey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s.Do(t, "POST", "/api/v1/credits/issuers?name=test", string(voucher.MarshalPublicKey(key.Public())), 201, nil)
	_, text := voucher.Issue(key, s.AccountID, "v1", 100, time.Now().UTC().Truncate(time.Second))
	s.Do(t, "POST", "/api/v1/credits/vouchers", string(text), 200, nil)

	var site struct {
		ID string `json:"id"`
	}
	s.Do(t, "POST", "/api/v1/sites", `{"name":"Headquarters"}`, 201, &site)
	s.SiteID = site.ID
	s.Do(t, "POST", "/api/v1/sites/"+s.SiteID+"/reader-configs", "lintel-reader-config 1\nname = London\n", 201, nil)
	return s
}

var linkRE = regexp.MustCompile(`https?://\S+/activate/\S+`)

// IssueCard creates a card, sends it and returns its id and the activation
// link read from the outbox.
func (s *Site) IssueCard(t testing.TB, first, last, privateID string) (cardID, activationURL string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{
		"first_name": first, "last_name": last, "email": strings.ToLower(first) + "@example.com",
		"reader_config": "London", "private_id": privateID,
	})
	var card struct {
		ID string `json:"id"`
	}
	s.Do(t, "POST", "/api/v1/sites/"+s.SiteID+"/cards", string(body), 201, &card)
	s.Do(t, "POST", "/api/v1/cards/"+card.ID+"/send", "", 200, nil)
	var outbox struct {
		Items []struct {
			CardID string `json:"card_id"`
			Body   string `json:"body"`
		} `json:"items"`
	}
	s.Do(t, "GET", "/api/v1/outbox?limit=1000", "", 200, &outbox)
	for _, m := range outbox.Items {
		if m.CardID == card.ID {
			activationURL = linkRE.FindString(m.Body)
		}
	}
	if activationURL == "" {
		t.Fatalf("no activation link for card %s in the outbox", card.ID)
	}
	return card.ID, activationURL
}

// Card is the part of GET /api/v1/cards/{id} the tests look at.
type Card struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Device *struct {
		PublicKey string `json:"public_key"`
	} `json:"device"`
}

// Card reads a card.
func (s *Site) Card(t testing.TB, id string) Card {
	t.Helper()
	var c Card
	s.Do(t, "GET", "/api/v1/cards/"+id, "", 200, &c)
	return c
}

// Credits is GET /api/v1/credits.
type Credits struct {
	Balance  int64 `json:"balance"`
	Reserved int64 `json:"reserved"`
	Used     int64 `json:"used"`
	Refunded int64 `json:"refunded"`
	Lost     int64 `json:"lost"`
}

// Credits reads the account's ledger.
func (s *Site) Credits(t testing.TB) Credits {
	t.Helper()
	var c Credits
	s.Do(t, "GET", "/api/v1/credits", "", 200, &c)
	return c
}

// Do sends one API request, checks the status and decodes the answer into
// out when out is not nil.
func (s *Site) Do(t testing.TB, method, path, body string, want int, out any) {
	t.Helper()
	r := s.Client.Do(t, method, path, body, nil)
	if r.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, r.StatusCode, want, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.Body), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, r.Body)
		}
	}
}
