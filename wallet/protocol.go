package wallet

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"lintel/consensus/command"
	"lintel/pki"
)

// maxAnswer bounds what the wallet reads of a node's answer.
const maxAnswer = 1 << 20

// checkinBatch is the most card ids the node takes in one check-in.
const checkinBatch = 100

// DeletionReceiptMessage is what the phone signs to confirm it deleted a card.
func DeletionReceiptMessage(cardID string) []byte {
	return command.DeletionReceiptMessage(cardID)
}

// ServerError is a refusal by the node: an HTTP error status, with the code
// and message of the API's error body when it had one.
type ServerError struct {
	StatusCode int
	Code       string
	Message    string
}

func (e *ServerError) Error() string {
	if e.Code == "" {
		return oneLine(e.Message)
	}
	return oneLine(e.Message) + " (" + e.Code + ")"
}

// NetError is a failed exchange with a node: it could not be reached, did
// not answer in time, or answered something that is not the API.
type NetError struct {
	Node string // scheme://host[:port], never the activation token
	Err  error
}

func (e *NetError) Error() string {
	var ne interface{ Timeout() bool }
	if errors.As(e.Err, &ne) && ne.Timeout() {
		return fmt.Sprintf("no answer from the node at %s within %s", e.Node, HTTPTimeout)
	}
	return fmt.Sprintf("cannot reach the node at %s: %s", e.Node, oneLine(e.Err.Error()))
}

func (e *NetError) Unwrap() error { return e.Err }

// ErrOutcomeUnknown marks an activation whose request may have reached the
// node: the key is kept, and running the same activation again finishes it.
var ErrOutcomeUnknown = errors.New("the activation's outcome is unknown")

type outcomeError struct{ err error }

func (e *outcomeError) Error() string {
	return e.err.Error() + "; the card may be activated already: the key is kept in the wallet, run the same activation again to finish"
}

func (e *outcomeError) Unwrap() []error { return []error{e.err, ErrOutcomeUnknown} }

// ParseActivationURL checks an activation link (http://host:port/activate/TOKEN)
// and returns the URL of the node it points at.
func ParseActivationURL(s string) (node string, err error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an activation link: want http://HOST:PORT/activate/TOKEN")
	}
	if _, err := activationPin(u); err != nil {
		return "", err
	}
	i := strings.LastIndex(u.Path, "/activate/")
	if i < 0 {
		return "", errors.New("not an activation link: the path has no /activate/TOKEN")
	}
	token := u.Path[i+len("/activate/"):]
	if token == "" || strings.Contains(token, "/") {
		return "", errors.New("not an activation link: no token after /activate/")
	}
	return u.Scheme + "://" + u.Host + u.Path[:i], nil
}

// activationPin is the CA fingerprint an activation link carries in its
// fragment (#ca=sha256:HEX), "" when it carries none. A pin is only taken
// with https: a pinned http link is refused (someone rewrote it).
func activationPin(u *url.URL) (string, error) {
	if u.Fragment == "" {
		return "", nil
	}
	v, err := url.ParseQuery(u.Fragment)
	fp := v.Get("ca")
	if err != nil || !strings.HasPrefix(fp, "sha256:") || len(fp) != 7+64 {
		return "", errors.New("the activation link's #ca= part is damaged: copy the whole link")
	}
	if u.Scheme != "https" {
		return "", errors.New("the activation link names a CA but is not https: copy the whole link as it was sent")
	}
	return fp, nil
}

// pinOf is activationPin of a link already checked.
func pinOf(link string) string {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil {
		return ""
	}
	fp, _ := activationPin(u)
	return fp
}

// pinFor is the CA fingerprint the wallet trusts a node under: the one
// the activation link of a card from that node named, else that of any of
// its cards (another node of the same cluster); "" for none.
func (w *Wallet) pinFor(node string) string {
	pin, other, several := "", "", false
	for _, c := range w.cards {
		if c.NodeURL == node && c.CA != "" {
			pin = c.CA
		}
		if c.CA != "" {
			several = several || (other != "" && other != c.CA)
			other = c.CA
		}
	}
	if pin == "" && !several {
		pin = other // the cards all come from one cluster: another node of it
	}
	return pin
}

// clientFor is the client for a node: pinned to a cluster CA over https,
// else w.HTTP (system roots for https).
// The node's host must be named by its certificate too.
func (w *Wallet) clientFor(node, pin string) *http.Client {
	u, err := url.Parse(node)
	if pin == "" || err != nil || u.Scheme != "https" {
		return w.HTTP
	}
	key := pin + " " + u.Hostname()
	w.mu.Lock()
	defer w.mu.Unlock()
	if cl, ok := w.pinned[key]; ok {
		return cl
	}
	if w.pinned == nil {
		w.pinned = map[string]*http.Client{}
	}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: pki.PinnedHostConfig(pin, u.Hostname()), ForceAttemptHTTP2: false}
	cl := &http.Client{Timeout: w.HTTP.Timeout, Transport: tr}
	w.pinned[key] = cl
	return cl
}

// ParseNodeURL checks a node's URL (http://HOST:PORT) and returns it without
// a trailing slash.
func ParseNodeURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("not a node URL: want http://HOST:PORT")
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/"), nil
}

// activation is the node's answer to POST /activate/{token}.
type activation struct {
	CardID       string `json:"card_id"`
	SiteID       string `json:"site_id"`
	Site         string `json:"site"`
	Kind         string `json:"kind"`
	ReaderConfig string `json:"reader_config"`
	PrivateID    string `json:"private_id"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Status       string `json:"status"`
	Cluster      string `json:"cluster"`
	VerdictKey   []byte `json:"verdict_key"`
}

// Activate redeems an activation link: it makes a fresh P-256 key, sends
// its public half to the node and stores the card the node bound to it.
//
// A refusal by the node is a *ServerError (link_used, link_expired,
// link_not_found...). When the request may have reached the node but no
// answer came back, the error wraps ErrOutcomeUnknown and the key stays in
// the wallet: calling Activate again with the same link reuses it with the
// same idempotency key, so the node repeats its first answer.
func (w *Wallet) Activate(ctx context.Context, activationURL string) (*Card, error) {
	activationURL = strings.TrimSpace(activationURL)
	node, err := ParseActivationURL(activationURL)
	if err != nil {
		return nil, err
	}
	p := w.pendingFor(activationURL)
	fresh := p == nil
	if fresh {
		key, err := newKey()
		if err != nil {
			return nil, err
		}
		p = &pending{URL: activationURL, IdempotencyKey: "wallet-" + randomHex(16), StartedAt: w.now().UTC(), key: key}
		if p.PrivateKey, err = marshalKey(key); err != nil {
			return nil, err
		}
		// The key is on disk before the node can bind it.
		w.pending = append(w.pending, p)
		if err := w.Save(); err != nil {
			w.dropPending(p)
			return nil, err
		}
	}
	der, err := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	if err != nil {
		return nil, err
	}
	var ans activation
	pin := pinOf(activationURL) // the link's own word, checked before the token is sent
	if pin == "" {
		pin = w.pinFor(node)
	}
	err = w.postPinned(ctx, pin, node, activationURL, map[string]string{"public_key": base64.StdEncoding.EncodeToString(der)}, p.IdempotencyKey, &ans)
	if err == nil && ans.CardID == "" {
		err = &NetError{Node: node, Err: errors.New("the answer has no card_id")}
	}
	var se *ServerError
	switch {
	case errors.As(err, &se) && se.definite(), fresh && notSent(err):
		// A definite refusal, or a request that never left: nothing was
		// bound to the key. (A key kept from an earlier try stays when the
		// node cannot be reached now.)
		w.dropPending(p)
		if serr := w.Save(); serr != nil {
			return nil, fmt.Errorf("%w (and %v)", err, serr)
		}
		return nil, err
	case err != nil:
		return nil, &outcomeError{err}
	}
	c := &Card{
		CardID: ans.CardID, SiteID: ans.SiteID, Site: ans.Site, Kind: ans.Kind, ReaderConfig: ans.ReaderConfig,
		PrivateID: ans.PrivateID, FirstName: ans.FirstName, LastName: ans.LastName, Status: ans.Status,
		NodeURL: node, CA: pinOf(activationURL), Cluster: ans.Cluster, VerdictKey: ans.VerdictKey, ActivatedAt: w.now().UTC(), key: p.key,
	}
	// A card re-issued to this phone after a revoke has the same id: the
	// new activation replaces whatever is left of the old one.
	w.remove(c.CardID)
	w.dropPending(p)
	w.cards = append(w.cards, c)
	if err := w.Save(); err != nil {
		// The file still holds the pending activation and its key.
		return c, fmt.Errorf("the card is activated but the wallet file was not updated (%v); fix that and run the same activation again", err)
	}
	return c, nil
}

func (w *Wallet) pendingFor(activationURL string) *pending {
	for _, p := range w.pending {
		if p.URL == activationURL {
			return p
		}
	}
	return nil
}

func (w *Wallet) dropPending(p *pending) {
	for i, q := range w.pending {
		if q == p {
			w.pending = append(w.pending[:i], w.pending[i+1:]...)
			return
		}
	}
}

// What a check-in did with a card (CheckinResult.Action).
const (
	ActionKept    = "kept"    // the card stays; its status is updated
	ActionDeleted = "deleted" // deleted on the node's instruction
	ActionRemoved = "removed" // the node does not know the card: removed, no receipt
)

// What became of a deletion receipt (CheckinResult.Receipt).
const (
	ReceiptConfirmed = "confirmed"  // the node took it: the card is revoked
	ReceiptPending   = "pending"    // not delivered; the next check-in sends it again
	ReceiptNotNeeded = "not_needed" // the node needs none (the card is lost or gone)
	ReceiptRefused   = "refused"    // the node refused it; it is dropped
)

// CheckinResult is what a check-in did with one card; its JSON form is what
// `lintel wallet checkin` prints.
type CheckinResult struct {
	CardID  string `json:"card_id"`
	Status  string `json:"status,omitempty"` // the card's status on the node
	Action  string `json:"action"`
	Receipt string `json:"receipt,omitempty"`
	Error   string `json:"error,omitempty"`
}

// checkinAnswer is the node's answer to POST /wallet/v1/checkin.
type checkinAnswer struct {
	Cards []struct {
		CardID string `json:"card_id"`
		Status string `json:"status"`
		Delete bool   `json:"delete"`
	} `json:"cards"`
	Cluster    string `json:"cluster"`
	VerdictKey []byte `json:"verdict_key"`
}

// Checkin asks the node for the status of every card held and carries out
// its instructions: a card to delete is deleted and its signed deletion
// receipt sent, which completes the revoke on the node; a card the node does
// not know is removed without a receipt, unless the card belongs to another
// cluster (the node names its cluster; the card remembers its own). Receipts that did not get through
// at an earlier check-in are sent first.
//
// The results cover every card touched, also when err is not nil; err is
// not nil when any card had an error or the node could not be asked.
func (w *Wallet) Checkin(ctx context.Context, nodeURL string) ([]CheckinResult, error) {
	node, err := ParseNodeURL(nodeURL)
	if err != nil {
		return nil, err
	}
	var out []CheckinResult
	failed := 0
	add := func(r CheckinResult) {
		if r.Error != "" {
			failed++
		}
		out = append(out, r)
	}

	for _, c := range append([]*Card(nil), w.cards...) {
		if c.Deleted && c.receipt != nil {
			add(w.deliverReceipt(ctx, node, c, CheckinResult{CardID: c.CardID, Status: c.Status, Action: ActionDeleted}))
		}
	}

	held := w.Cards()
	for start := 0; start < len(held); start += checkinBatch {
		batch := held[start:min(start+checkinBatch, len(held))]
		ids := make([]string, len(batch))
		for i, c := range batch {
			ids[i] = c.CardID
		}
		var ans checkinAnswer
		if err := w.post(ctx, node, node+"/wallet/v1/checkin", map[string][]string{"card_ids": ids}, "", &ans); err != nil {
			if serr := w.Save(); serr != nil {
				err = fmt.Errorf("%w (and %v)", err, serr)
			}
			return out, err
		}
		answered := map[string]int{}
		for i, a := range ans.Cards {
			answered[a.CardID] = i
		}
		for _, c := range batch {
			i, ok := answered[c.CardID]
			if !ok {
				add(CheckinResult{CardID: c.CardID, Status: c.Status, Action: ActionKept, Error: "the node's answer left this card out"})
				continue
			}
			a := ans.Cards[i]
			r := CheckinResult{CardID: c.CardID, Status: a.Status}
			otherCluster := c.Cluster != "" && ans.Cluster != "" && c.Cluster != ans.Cluster
			switch {
			case otherCluster:
				// Another cluster's node knows nothing of this card: that
				// is no reason to drop it.
				r.Status, r.Action = c.Status, ActionKept
			case !a.Delete:
				c.Status, r.Action = a.Status, ActionKept
				if c.Cluster == "" {
					c.Cluster = ans.Cluster // learnt from a node that knows the card
				}
				if c.VerdictKey == nil && c.Cluster == ans.Cluster {
					c.VerdictKey = ans.VerdictKey
				}
			case a.Status == "deleted":
				w.remove(c.CardID)
				r.Action = ActionRemoved
			case a.Status == "lost":
				// The node refuses receipts for lost cards: the credits are
				// gone and no reader grants the card any more.
				w.remove(c.CardID)
				r.Action, r.Receipt = ActionDeleted, ReceiptNotNeeded
			default:
				c.Status, r.Action = a.Status, ActionDeleted
				if _, err := w.Delete(c.CardID); err != nil {
					r.Action, r.Error = ActionKept, oneLine(err.Error())
					break
				}
				r = w.deliverReceipt(ctx, node, c, r)
			}
			add(r)
		}
	}
	if err := w.Save(); err != nil {
		return out, err
	}
	if failed > 0 {
		return out, fmt.Errorf("%d of %d cards had errors", failed, len(out))
	}
	return out, nil
}

// deliverReceipt sends a deleted card's receipt and forgets the card once
// the node has it.
func (w *Wallet) deliverReceipt(ctx context.Context, node string, c *Card, r CheckinResult) CheckinResult {
	var ans struct {
		CardID string `json:"card_id"`
		Status string `json:"status"`
	}
	body := map[string]string{"card_id": c.CardID, "signature": base64.StdEncoding.EncodeToString(c.receipt)}
	err := w.post(ctx, node, node+"/wallet/v1/receipts", body, "", &ans)
	var se *ServerError
	switch {
	case err == nil:
		w.ReceiptDelivered(c.CardID)
		r.Receipt = ReceiptConfirmed
		if ans.Status != "" {
			r.Status = ans.Status
		}
	case errors.As(err, &se) && se.Code == "card_not_found":
		w.ReceiptDelivered(c.CardID)
		r.Receipt, r.Status = ReceiptNotNeeded, "deleted"
	case errors.As(err, &se) && se.definite():
		// Sending it again cannot change the answer.
		w.ReceiptDelivered(c.CardID)
		r.Receipt, r.Error = ReceiptRefused, "the node refused the deletion receipt: "+err.Error()
	default:
		c.Status = r.Status
		r.Receipt, r.Error = ReceiptPending, "deletion receipt not delivered, the next check-in sends it again: "+err.Error()
	}
	return r
}

// definite reports whether a refusal is the node's answer to the request
// itself: a 4xx other than 408 and 429 (too many requests from this address,
// which a flood by someone else on the same network can cause), which say
// "not now" and leave the request to be sent again.
func (e *ServerError) definite() bool {
	return e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests && e.StatusCode != http.StatusRequestTimeout
}

// notSent reports whether a request failed before it could reach the node:
// the connection was never made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// A node whose certificate is refused never saw the request.
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.Is(err, pki.ErrOtherCluster) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// post sends body as JSON and decodes a 200 answer into out. An error
// status is a *ServerError; anything else that goes wrong is a *NetError.
// A node that answers 429 (too many requests from this address) is asked
// again after its Retry-After, a few times, while ctx allows.
func (w *Wallet) post(ctx context.Context, node, target string, body any, idempotencyKey string, out any) error {
	return w.postPinned(ctx, w.pinFor(node), node, target, body, idempotencyKey, out)
}

// postPinned is post trusting the node under the CA fingerprint pin ("" for system roots).
func (w *Wallet) postPinned(ctx context.Context, pin, node, target string, body any, idempotencyKey string, out any) error {
	cl := w.clientFor(node, pin)
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	for try := 0; ; try++ {
		wait, err := w.postOnce(ctx, cl, node, target, b, idempotencyKey, out)
		if wait == 0 || try == 3 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// postOnce sends b once. A 429 returns its error and how long to wait.
func (w *Wallet) postOnce(ctx context.Context, cl *http.Client, node, target string, b []byte, idempotencyKey string, out any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return 0, &NetError{Node: node, Err: errors.New("bad URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := cl.Do(req)
	if err != nil {
		// *url.Error repeats the URL, and an activation URL holds the token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, &NetError{Node: node, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, &NetError{Node: node, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(data) > maxAnswer {
		return 0, &NetError{Node: node, Err: errors.New("the answer is over 1 MiB")}
	}
	if resp.StatusCode != http.StatusOK {
		se := &ServerError{StatusCode: resp.StatusCode, Message: "the node answered " + resp.Status}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			se.Code, se.Message = eb.Error.Code, eb.Error.Message
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return time.Duration(min(max(secs, 1), 5)) * time.Second, se
		}
		return 0, se
	}
	if err := json.Unmarshal(data, out); err != nil {
		return 0, &NetError{Node: node, Err: fmt.Errorf("the answer is not the JSON expected: %v", err)}
	}
	return 0, nil
}

// oneLine keeps a message from the network on one printable line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "..."
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
