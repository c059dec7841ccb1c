package api

import (
	"io"
	"net/http"
	"sort"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/consensus/state/voucher"
)

// creditsView is GET /api/v1/credits (SPEC 4.7).
type creditsView struct {
	Balance        int64      `json:"balance"`
	Reserved       int64      `json:"reserved"`
	Available      int64      `json:"available"`
	Used           int64      `json:"used"`
	Refunded       int64      `json:"refunded"`
	Lost           int64      `json:"lost"`
	AlertThreshold int64      `json:"alert_threshold"`
	Alert          bool       `json:"alert"`
	LastLoaded     *time.Time `json:"last_loaded"`
}

func viewCredits(l state.Ledger) creditsView {
	return creditsView{Balance: l.Balance, Reserved: l.Reserved, Available: l.Available(), Used: l.Used, Refunded: l.Refunded,
		Lost: l.Lost, AlertThreshold: l.AlertThreshold, Alert: l.Alert(), LastLoaded: l.LastLoaded}
}

func (a *API) getCredits(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	var l state.Ledger
	a.svc.Read(func(s *state.State) { l = s.Accounts.At(p.Account.ID).Credits })
	writeJSON(w, http.StatusOK, viewCredits(l))
}

// loadVoucher takes the voucher text as the body (text/plain or the file).
func (a *API) loadVoucher(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !p.Profile.CanOrderCredits {
		writeError(w, http.StatusForbidden, "forbidden", "", "your profile may not order credits; ask an administrator")
		return
	}
	text, err := io.ReadAll(io.LimitReader(r.Body, 8<<10+1))
	if err != nil || len(text) == 0 || len(text) > 8<<10 {
		writeError(w, http.StatusBadRequest, "invalid_voucher", "voucher", "send the voucher text (as printed by lintel voucher issue) as the request body; it is at most a few hundred bytes")
		return
	}
	if _, ok := a.write(w, r, p, &command.LoadVoucher{AccountID: p.Account.ID, Voucher: text}); !ok {
		return
	}
	var l state.Ledger
	a.svc.Read(func(s *state.State) { l = s.Accounts.At(p.Account.ID).Credits })
	writeJSON(w, http.StatusOK, viewCredits(l))
}

func (a *API) patchCredits(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		AlertThreshold *int64 `json:"alert_threshold"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.AlertThreshold == nil {
		writeError(w, http.StatusBadRequest, "required", "alert_threshold", "send {\"alert_threshold\": N}")
		return
	}
	val, ok := a.write(w, r, p, &command.SetAlertThreshold{AccountID: p.Account.ID, Threshold: *req.AlertThreshold})
	if !ok {
		return
	}
	var l state.Ledger
	jsonUnmarshal(val, &l)
	writeJSON(w, http.StatusOK, viewCredits(l))
}

// outboxView is one message of GET /api/v1/outbox (SPEC 4.7).
type outboxView struct {
	ID        string     `json:"id"`
	To        string     `json:"to"`
	Subject   string     `json:"subject"`
	Body      string     `json:"body"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error"`
	CardID    string     `json:"card_id"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at"`
}

func outboxKey(v outboxView) string { return v.CreatedAt.Format(time.RFC3339Nano) + "\x00" + v.ID }

// MaySeeMessage tells whether the operator may read a queued message, whose
// link is a credential: a card's message only for an operator who may see
// the card's site; an operator's invitation only for one who may create
// operators (it would let the reader set the invited person's password).
func MaySeeMessage(s *state.State, p *Principal, m state.Message) bool {
	if m.AccountID != p.Account.ID {
		return false
	}
	if m.CardID == "" {
		return p.can("operators", "create")
	}
	c, ok := s.Cards.Get(m.CardID)
	return ok && p.CanSite(c.SiteID)
}

func (a *API) listOutbox(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	var items []outboxView
	a.svc.Read(func(s *state.State) {
		for _, m := range s.Outbox.All() {
			if !MaySeeMessage(s, p, m) || (q.Status != "" && m.Status != q.Status) || !matches(q.Q, m.To, m.Subject, m.Status) {
				continue
			}
			items = append(items, outboxView{ID: m.ID, To: m.To, Subject: m.Subject, Body: m.Body, Status: m.Status,
				Attempts: m.Attempts, LastError: m.LastError, CardID: m.CardID, CreatedAt: m.CreatedAt, SentAt: m.SentAt})
		}
	})
	sort.Slice(items, func(i, j int) bool { return outboxKey(items[i]) < outboxKey(items[j]) })
	writeJSON(w, http.StatusOK, page(items, outboxKey, q))
}

type issuerView struct {
	KeyID   string    `json:"key_id"`
	Name    string    `json:"name"`
	AddedAt time.Time `json:"added_at"`
}

func (a *API) listIssuers(w http.ResponseWriter, r *http.Request, p *Principal) {
	var items []issuerView
	a.svc.Read(func(s *state.State) {
		for _, is := range s.Issuers.All() {
			items = append(items, issuerView{KeyID: is.KeyID, Name: is.Name, AddedAt: is.AddedAt})
		}
	})
	sort.Slice(items, func(i, j int) bool { return items[i].KeyID < items[j].KeyID })
	if items == nil {
		items = []issuerView{}
	}
	writeJSON(w, http.StatusOK, listPage[issuerView]{Items: items})
}

// addIssuer trusts a credit issuer: the body is its public key file
// (FILE.pub of lintel voucher keygen). Administrators only.
func (a *API) addIssuer(w http.ResponseWriter, r *http.Request, p *Principal) {
	if p.Profile.Name != state.AdministratorProfile {
		writeError(w, http.StatusForbidden, "forbidden", "", "only an administrator may trust a credit issuer")
		return
	}
	text, _ := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	pub, err := voucher.ParsePublicKey(text)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_value", "public_key", "the body must be an issuer public key file (FILE.pub from lintel voucher keygen): "+err.Error())
		return
	}
	val, ok := a.write(w, r, p, &command.AddIssuer{KeyID: voucher.KeyID(pub), PublicKey: pub, Name: r.URL.Query().Get("name")})
	if !ok {
		return
	}
	var is state.Issuer
	jsonUnmarshal(val, &is)
	writeJSON(w, http.StatusCreated, issuerView{KeyID: is.KeyID, Name: is.Name, AddedAt: is.AddedAt})
}
