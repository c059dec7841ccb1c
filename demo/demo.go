// Package demo brings a new demo cluster to life: it makes the demo
// customer's cards through the node's own API, in every status, and plays a
// phone (a real wallet) that presents them at the demo's doors every few
// seconds, so a newcomer sees events and counters move.
package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"lintel/consensus/state"
	"lintel/node"
	"lintel/wallet"
)

// PhoneEvery is how often the simulated phone presents a card.
const PhoneEvery = 4 * time.Second

// site is the demo's reader configuration name (the site's name).
const site = "Headquarters"

// card is one card of the demo and the status it is brought to.
type card struct {
	first, last, id string
	status          string
}

var cards = []card{
	{"Aymerick", "Bradley", "984523", state.CardCreated},
	{"Mary", "Foster", "658742", state.CardCreated},
	{"John", "Middleton", "489378", state.CardSent},
	{"Claudia", "Green", "127496", state.CardActivated},
	{"Simon", "White", "568746", state.CardActivated},
	{"Nadia", "Okafor", "311207", state.CardActivated},
	{"Frederick", "Blackledge", "785612", state.CardPendingRevoke},
	{"Olivia", "Stone", "402318", state.CardRevoked},
	{"Peter", "Lane", "770145", state.CardLost},
}

// Drive makes the demo's cards through the API, as the customer's
// operator, and runs a phone that presents them at the doors until ctx ends.
func Drive(ctx context.Context, d node.DemoSetup) {
	log := d.Log
	cl, err := login(ctx, d)
	if err != nil {
		log.Warn("demo: no login", "err", err)
		return
	}
	phone, err := wallet.Open(filepath.Join(d.DataDir, "demo-phone.json"))
	if err != nil {
		log.Warn("demo: no phone", "err", err)
		return
	}
	// The phone that was lost: it never checks in again, so its revoked
	// card stays Pending Revoke.
	lostPhone, _ := wallet.Open(filepath.Join(d.DataDir, "demo-lost-phone.json"))
	for _, want := range cards {
		var made struct {
			ID string `json:"id"`
		}
		err := cl.call(ctx, http.MethodPost, "/api/v1/sites/"+d.SiteID+"/cards", map[string]any{
			"first_name": want.first, "last_name": want.last, "email": want.first + "." + want.last + "@example.com",
			"reader_config": site, "private_id": want.id,
		}, &made)
		if err != nil {
			log.Warn("demo: card not made", "err", err)
			return
		}
		if want.status == state.CardCreated {
			continue
		}
		if err := cl.call(ctx, http.MethodPost, "/api/v1/cards/"+made.ID+"/send", nil, nil); err != nil {
			log.Warn("demo: card not sent", "err", err)
			return
		}
		if want.status == state.CardSent {
			continue
		}
		link, err := cl.activationLink(ctx, made.ID)
		if err != nil {
			log.Warn("demo: no activation link", "err", err)
			return
		}
		w := phone
		if want.status == state.CardPendingRevoke || want.status == state.CardLost {
			w = lostPhone
		}
		if _, err := w.Activate(ctx, link); err != nil {
			log.Warn("demo: activation", "err", err)
			return
		}
		if err := w.Save(); err != nil {
			log.Warn("demo: phone not saved", "err", err)
		}
		if want.status == state.CardActivated {
			continue
		}
		cl.call(ctx, http.MethodPost, "/api/v1/cards/"+made.ID+"/revoke", nil, nil)
		if want.status == state.CardRevoked {
			phone.Checkin(ctx, d.URL) // deletes it and sends the receipt: Revoked
			phone.Save()
		}
		if want.status == state.CardLost {
			cl.call(ctx, http.MethodPost, "/api/v1/cards/"+made.ID+"/lost", nil, nil)
		}
	}
	log.Info("demo: cards made; a simulated phone presents at door-1 and door-2", "every", PhoneEvery)
	doors := []string{"door-1", "door-2"}
	tick := time.NewTicker(PhoneEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		held := phone.Cards()
		if len(held) == 0 || d.ReaderLink == "" {
			continue
		}
		c := held[rand.IntN(len(held))]
		door := doors[rand.IntN(len(doors))]
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		phone.Present(pctx, d.ReaderLink, door, c.CardID)
		pcancel()
		phone.Save()
	}
}

// client is the demo's own HTTP client of the node's API.
type client struct {
	base string
	http *http.Client
}

// login logs in as the demo customer's operator.
func login(ctx context.Context, d node.DemoSetup) (*client, error) {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	if d.CAFile != "" {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cl := &client{base: d.URL, http: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}}
	var err error
	for range 50 { // the HTTP server may still be starting
		if err = cl.call(ctx, http.MethodPost, "/api/v1/session", map[string]string{"email": d.Email, "password": d.Password}, nil); err == nil {
			return cl, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, err
}

func (cl *client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

var activationLinkRE = regexp.MustCompile(`https?://\S+/activate/[A-Za-z0-9_-]+(#ca=sha256:[0-9a-f]+)?`)

// activationLink reads the card's link from its message in the outbox, as an
// operator of a site without a mail relay does.
func (cl *client) activationLink(ctx context.Context, card string) (string, error) {
	var page struct {
		Items []struct {
			CardID string `json:"card_id"`
			Body   string `json:"body"`
		} `json:"items"`
	}
	if err := cl.call(ctx, http.MethodGet, "/api/v1/outbox?limit=1000", nil, &page); err != nil {
		return "", err
	}
	link := ""
	for _, m := range page.Items {
		if m.CardID == card {
			link = activationLinkRE.FindString(m.Body) // the newest message wins
		}
	}
	if link == "" {
		return "", errors.New("no activation message for card " + card)
	}
	return link, nil
}
