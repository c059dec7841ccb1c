package api

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// InvitationTTL is how long an operator invitation link works.
const InvitationTTL = 7 * 24 * time.Hour

type accountView struct {
	ID        string      `json:"id"`
	ParentID  string      `json:"parent_id"`
	Name      string      `json:"name"`
	Kind      string      `json:"kind"`
	Status    string      `json:"status"`
	Email     string      `json:"email"`
	FirstName string      `json:"first_name"`
	LastName  string      `json:"last_name"`
	Phone     string      `json:"phone"`
	CreatedAt time.Time   `json:"created_at"`
	Credits   creditsView `json:"credits"`
}

func viewAccount(a state.Account) accountView {
	return accountView{ID: a.ID, ParentID: a.ParentID, Name: a.Name, Kind: a.Kind, Status: a.Status, Email: a.Email,
		FirstName: a.FirstName, LastName: a.LastName, Phone: a.Phone, CreatedAt: a.CreatedAt, Credits: viewCredits(a.Credits)}
}

func accountKey(v accountView) string { return strings.ToLower(v.Name) + "\x00" + v.ID }

func (a *API) listAccounts(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, page(a.customerAccounts(p, q), accountKey, q))
}

// customerAccounts is the caller's customer accounts with the filters and
// order (by name) of GET /api/v1/accounts; its export shows the same rows.
func (a *API) customerAccounts(p *Principal, q listQuery) []accountView {
	var items []accountView
	a.svc.Read(func(s *state.State) {
		for _, x := range s.Accounts.All() {
			if x.ParentID == p.Account.ID && (q.Status == "" || x.Status == q.Status) && matches(q.Q, x.Name, x.Email, x.FirstName, x.LastName, x.Kind, x.Status) {
				items = append(items, viewAccount(x))
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return accountKey(items[i]) < accountKey(items[j]) })
	return items
}

// invite makes an invitation link and its message, worded by the account
// the operator joins (a new customer account has no wording yet: the default).
func (a *API) invite(accountID, email, first, last, accountName string) (hash string, expires time.Time, msg command.Message) {
	token := newToken()
	expires = a.now().UTC().Add(InvitationTTL)
	msg = a.message(accountID, state.TemplateInvitation, email, map[string]string{
		"first_name": first, "last_name": last, "account": accountName, "expires": when(expires),
		"link": strings.TrimRight(a.baseURL, "/") + "/invitation/" + token,
	})
	return HashToken(token), expires, msg
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		Name      string `json:"name"`
		Kind      string `json:"kind"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Email     string `json:"email"`
		Phone     string `json:"phone"`
		Credits   int64  `json:"credits"`
		Comment   string `json:"comment"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Kind == "" {
		req.Kind = state.AccountEndCustomer
	}
	if req.Credits > 0 && !p.Profile.CanTransferCredits {
		writeError(w, http.StatusForbidden, "forbidden", "credits", "your profile may not transfer credits")
		return
	}
	hash, exp, msg := a.invite("", req.Email, req.FirstName, req.LastName, req.Name)
	val, ok := a.write(w, r, p, &command.CreateAccount{ID: newID(), ParentID: p.Account.ID, Name: req.Name, Kind: req.Kind,
		FirstName: req.FirstName, LastName: req.LastName, Email: req.Email, Phone: req.Phone, OperatorID: newID(), ProfileID: newID(),
		InviteHash: hash, InviteExpires: exp, Credits: req.Credits, TransferID: newID(), Comment: req.Comment, Invitation: msg})
	if ok {
		var acc state.Account
		jsonUnmarshal(val, &acc)
		writeJSON(w, http.StatusCreated, viewAccount(acc))
	}
}

func (a *API) findCustomer(w http.ResponseWriter, p *Principal, id string) (state.Account, bool) {
	var x state.Account
	ok := a.readFresh(func(s *state.State) bool {
		var found bool
		x, found = s.Accounts.Get(id)
		return found && x.ParentID == p.Account.ID
	})
	if !ok {
		writeError(w, http.StatusNotFound, "account_not_found", "", "account "+id+" is not one of your customer accounts")
		return x, false
	}
	return x, true
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	if x, ok := a.findCustomer(w, p, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, viewAccount(x))
	}
}

func (a *API) patchAccount(w http.ResponseWriter, r *http.Request, p *Principal) {
	x, ok := a.findCustomer(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		Name           *string `json:"name"`
		FirstName      *string `json:"first_name"`
		LastName       *string `json:"last_name"`
		Phone          *string `json:"phone"`
		AlertThreshold *int64  `json:"alert_threshold"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.UpdateAccount{ID: x.ID, ParentID: p.Account.ID, Name: req.Name, FirstName: req.FirstName,
		LastName: req.LastName, Phone: req.Phone, AlertThreshold: req.AlertThreshold})
	if ok {
		var acc state.Account
		jsonUnmarshal(val, &acc)
		writeJSON(w, http.StatusOK, viewAccount(acc))
	}
}

func (a *API) accountStatus(enable bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		x, ok := a.findCustomer(w, p, r.PathValue("id"))
		if !ok {
			return
		}
		val, ok := a.write(w, r, p, &command.SetAccountStatus{ID: x.ID, ParentID: p.Account.ID, Enable: enable})
		if ok {
			var acc state.Account
			jsonUnmarshal(val, &acc)
			writeJSON(w, http.StatusOK, viewAccount(acc))
		}
	}
}

func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request, p *Principal) {
	x, ok := a.findCustomer(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	if _, ok := a.write(w, r, p, &command.DeleteAccount{ID: x.ID, ParentID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

type transferView struct {
	ID            string    `json:"id"`
	At            time.Time `json:"at"`
	To            string    `json:"to"`
	TransferredTo string    `json:"transferred_to"`
	TransferredBy string    `json:"transferred_by"`
	Credits       int64     `json:"credits"`
	Comment       string    `json:"comment"`
}

func (a *API) transfer(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !p.Profile.CanTransferCredits {
		writeError(w, http.StatusForbidden, "forbidden", "", "your profile may not transfer credits")
		return
	}
	x, ok := a.findCustomer(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		Credits int64  `json:"credits"`
		Comment string `json:"comment"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.TransferCredits{ID: newID(), From: p.Account.ID, To: x.ID, Credits: req.Credits, Comment: req.Comment})
	if ok {
		var t state.Transfer
		jsonUnmarshal(val, &t)
		var v transferView
		a.svc.Read(func(s *state.State) { v = viewTransfer(s, t) })
		writeJSON(w, http.StatusCreated, v)
	}
}

func viewTransfer(s *state.State, t state.Transfer) transferView {
	by := s.Operators.At(t.By)
	return transferView{ID: t.ID, At: t.At, To: t.To, TransferredTo: s.Accounts.At(t.To).Name,
		TransferredBy: strings.TrimSpace(by.FirstName + " " + by.LastName), Credits: t.Credits, Comment: t.Comment}
}

func transferKey(v transferView) string { return v.At.Format(time.RFC3339Nano) + "\x00" + v.ID }

// dateRange reads ?from= and ?to= (RFC 3339 or yyyy-mm-dd; to is inclusive of that day).
func dateRange(w http.ResponseWriter, r *http.Request) (from, to time.Time, ok bool) {
	parse := func(field, v string, end bool) (time.Time, bool) {
		if v == "" {
			return time.Time{}, true
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t, true
		}
		if t, err := time.Parse("2006-01-02", v); err == nil {
			if end {
				t = t.Add(24*time.Hour - time.Nanosecond)
			}
			return t, true
		}
		writeError(w, http.StatusBadRequest, "invalid_value", field, field+" must be a date (2006-01-02) or an RFC 3339 time")
		return time.Time{}, false
	}
	if from, ok = parse("from", r.URL.Query().Get("from"), false); !ok {
		return
	}
	to, ok = parse("to", r.URL.Query().Get("to"), true)
	return
}

func inRange(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
}

func (a *API) listTransfers(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, ok := parseList(w, r)
	if !ok {
		return
	}
	from, to, ok := dateRange(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, page(a.transferLines(p, q, from, to), transferKey, q))
}

// transferLines is the credit transfer history of GET /api/v1/transfers:
// the transfers from and to the caller's account in [from, to] that match
// ?q=, in the order they were made; its export shows the same rows.
func (a *API) transferLines(p *Principal, q listQuery, from, to time.Time) []transferView {
	var items []transferView
	a.svc.Read(func(s *state.State) {
		for _, t := range s.Transfers.All() {
			if t.From != p.Account.ID && t.To != p.Account.ID || !inRange(t.At, from, to) {
				continue
			}
			v := viewTransfer(s, t)
			if matches(q.Q, v.TransferredTo, v.TransferredBy, v.Comment) {
				items = append(items, v)
			}
		}
	})
	return items
}

type historyView struct {
	At          time.Time `json:"at"`
	Area        string    `json:"area"`
	Action      string    `json:"action"`
	PerformedBy string    `json:"performed_by"`
	Node        string    `json:"node"`
	Index       uint64    `json:"index"`
}

func (a *API) listHistory(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, ok := parseList(w, r)
	if !ok {
		return
	}
	from, to, ok := dateRange(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	items, err := a.historyLines(p, q, from, to)
	if err != nil {
		a.historyFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page(items, func(v historyView) string { return v.At.Format(time.RFC3339Nano) + "\x00" + padIndex(v.Index) }, q))
}

// historyLines is the account history of GET /api/v1/history: the caller's
// account's lines in [from, to] that match ?q=, in commit order; its export
// shows the same rows.
func (a *API) historyLines(p *Principal, q listQuery, from, to time.Time) ([]historyView, error) {
	var lines []state.HistoryEntry
	err := a.svc.History(p.Account.ID, func(h state.HistoryEntry) bool {
		if inRange(h.At, from, to) {
			lines = append(lines, h)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	var items []historyView
	a.svc.Read(func(s *state.State) {
		for _, h := range lines {
			by := h.By
			if o, ok := s.Operators.Get(h.By); ok {
				by = strings.TrimSpace(o.FirstName + " " + o.LastName)
			}
			if matches(q.Q, h.Area, h.Action, by, h.Node) {
				items = append(items, historyView{At: h.At, Area: h.Area, Action: h.Action, PerformedBy: by, Node: h.Node, Index: h.Index})
			}
		}
	})
	return items, nil
}

func (a *API) historyFailed(w http.ResponseWriter, err error) {
	a.log.Error("history archive", "err", err)
	writeError(w, http.StatusInternalServerError, "history_unavailable", "", "this node's history archive could not be read: "+err.Error())
}

// padIndex writes a Raft index with a fixed width so cursors sort by it.
func padIndex(i uint64) string { return fmt.Sprintf("%020d", i) }

// acceptInvitation is POST /invitation/{token} {"password"}: an invited
// operator sets a password and is activated. No login: the link is the credential.
func (a *API) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	if len(req.Password) < 8 || len(req.Password) > 72 {
		writeError(w, http.StatusBadRequest, "invalid_value", "password", "choose a password of 8 to 72 characters")
		return
	}
	// The link first, on this replica, with a stand-in hash: a bogus link
	// costs neither a bcrypt nor a log entry.
	system := &Principal{Operator: state.Operator{ID: "invitation"}}
	bindKey(r, HashToken(r.PathValue("token")))
	if !a.precheck(w, r, system, &command.AcceptInvitation{InviteHash: HashToken(r.PathValue("token")), PasswordHash: "unchecked"}) {
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.DefaultCost)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_value", "password", "that password cannot be used")
		return
	}
	val, ok := a.write(w, r, system, &command.AcceptInvitation{InviteHash: HashToken(r.PathValue("token")), PasswordHash: string(hash)})
	if !ok {
		return
	}
	var o state.Operator
	jsonUnmarshal(val, &o)
	writeJSON(w, http.StatusOK, map[string]string{"email": o.Email, "status": o.Status})
}
