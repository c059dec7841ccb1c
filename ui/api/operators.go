package api

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

func viewOperator(s *state.State, o state.Operator) operatorView {
	ids := o.SiteIDs
	if ids == nil {
		ids = []string{}
	}
	return operatorView{ID: o.ID, FirstName: o.FirstName, LastName: o.LastName, Email: o.Email, Phone: o.Phone,
		ProfileID: o.ProfileID, Profile: s.Profiles.At(o.ProfileID).Name, SiteIDs: ids, Status: o.Status}
}

func operatorKey(v operatorView) string {
	return strings.ToLower(v.LastName+"\x00"+v.FirstName) + "\x00" + v.ID
}

func (a *API) listOperators(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, page(a.accountOperators(p, q), operatorKey, q))
}

// accountOperators is the operators of the caller's account with the
// filters and order (by last name) of GET /api/v1/operators; its export
// shows the same rows.
func (a *API) accountOperators(p *Principal, q listQuery) []operatorView {
	var items []operatorView
	a.svc.Read(func(s *state.State) {
		for _, o := range s.Operators.All() {
			if o.AccountID != p.Account.ID || (q.Status != "" && o.Status != q.Status) {
				continue
			}
			v := viewOperator(s, o)
			if matches(q.Q, v.FirstName, v.LastName, v.Email, v.Phone, v.Profile, v.Status) {
				items = append(items, v)
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return operatorKey(items[i]) < operatorKey(items[j]) })
	return items
}

func (a *API) createOperator(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		FirstName string   `json:"first_name"`
		LastName  string   `json:"last_name"`
		Email     string   `json:"email"`
		Phone     string   `json:"phone"`
		ProfileID string   `json:"profile_id"`
		SiteIDs   []string `json:"site_ids"`
		Password  string   `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	b := &command.CreateOperator{ID: newID(), AccountID: p.Account.ID, FirstName: req.FirstName, LastName: req.LastName,
		Email: req.Email, Phone: req.Phone, ProfileID: req.ProfileID, SiteIDs: req.SiteIDs}
	if req.Password != "" {
		if len(req.Password) < 8 || len(req.Password) > 72 {
			writeError(w, http.StatusBadRequest, "invalid_value", "password", "a password is 8 to 72 characters")
			return
		}
		hash, _ := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.DefaultCost)
		b.PasswordHash = string(hash)
	} else {
		b.InviteHash, b.InviteExpires, b.Invitation = a.invite(p.Account.ID, req.Email, req.FirstName, req.LastName, p.Account.Name)
	}
	val, ok := a.write(w, r, p, b)
	if !ok {
		return
	}
	var o state.Operator
	jsonUnmarshal(val, &o)
	var v operatorView
	a.svc.Read(func(s *state.State) { v = viewOperator(s, o) })
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) operatorWrite(make func(id string, p *Principal, r *http.Request) (command.Body, bool), status int) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		id := r.PathValue("id")
		found := a.readFresh(func(s *state.State) bool { o, ok := s.Operators.Get(id); return ok && o.AccountID == p.Account.ID })
		if !found {
			writeError(w, http.StatusNotFound, "operator_not_found", "", "there is no operator "+id+" in your account")
			return
		}
		b, ok := make(id, p, r)
		if !ok {
			writeError(w, http.StatusBadRequest, "malformed_json", "", "the request body is not the JSON this endpoint takes")
			return
		}
		val, ok := a.write(w, r, p, b)
		if !ok {
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		var o state.Operator
		jsonUnmarshal(val, &o)
		var v operatorView
		a.svc.Read(func(s *state.State) { v = viewOperator(s, o) })
		writeJSON(w, status, v)
	}
}

func patchOperatorBody(id string, p *Principal, r *http.Request) (command.Body, bool) {
	var req struct {
		FirstName *string   `json:"first_name"`
		LastName  *string   `json:"last_name"`
		Phone     *string   `json:"phone"`
		ProfileID *string   `json:"profile_id"`
		SiteIDs   *[]string `json:"site_ids"`
	}
	if !decodeQuiet(r, &req) {
		return nil, false
	}
	return &command.UpdateOperator{ID: id, AccountID: p.Account.ID, FirstName: req.FirstName, LastName: req.LastName,
		Phone: req.Phone, ProfileID: req.ProfileID, SiteIDs: req.SiteIDs}, true
}

type profileView struct {
	ID                 string              `json:"id"`
	Name               string              `json:"name"`
	Rights             map[string][]string `json:"rights"`
	CanOrderCredits    bool                `json:"can_order_credits"`
	CanTransferCredits bool                `json:"can_transfer_credits"`
}

func viewProfile(p state.Profile) profileView {
	return profileView{ID: p.ID, Name: p.Name, Rights: p.Rights, CanOrderCredits: p.CanOrderCredits, CanTransferCredits: p.CanTransferCredits}
}

func (a *API) listProfiles(w http.ResponseWriter, r *http.Request, p *Principal) {
	var items []profileView
	a.svc.Read(func(s *state.State) {
		for _, x := range s.Profiles.All() {
			if x.AccountID == p.Account.ID {
				items = append(items, viewProfile(x))
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	if items == nil {
		items = []profileView{}
	}
	writeJSON(w, http.StatusOK, listPage[profileView]{Items: items})
}

func (a *API) profileWrite(update bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		var req command.ProfileRights
		if !decode(w, r, &req) {
			return
		}
		var b command.Body = &command.CreateProfile{ID: newID(), AccountID: p.Account.ID, ProfileRights: req}
		status := http.StatusCreated
		if update {
			b, status = &command.UpdateProfile{ID: r.PathValue("id"), AccountID: p.Account.ID, ProfileRights: req}, http.StatusOK
		}
		val, ok := a.write(w, r, p, b)
		if ok {
			var x state.Profile
			jsonUnmarshal(val, &x)
			writeJSON(w, status, viewProfile(x))
		}
	}
}

func (a *API) deleteProfile(w http.ResponseWriter, r *http.Request, p *Principal) {
	if _, ok := a.write(w, r, p, &command.DeleteProfile{ID: r.PathValue("id"), AccountID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

type tokenView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	OperatorID string    `json:"operator_id"`
	CreatedAt  time.Time `json:"created_at"`
	Token      string    `json:"token,omitempty"` // only in the answer that creates it
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, p *Principal) {
	var items []tokenView
	a.svc.Read(func(s *state.State) {
		for _, t := range s.Tokens.All() {
			if t.AccountID == p.Account.ID {
				items = append(items, tokenView{ID: t.ID, Name: t.Name, OperatorID: t.OperatorID, CreatedAt: t.CreatedAt})
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return items[i].CreatedAt.Before(items[j].CreatedAt) })
	if items == nil {
		items = []tokenView{}
	}
	writeJSON(w, http.StatusOK, listPage[tokenView]{Items: items})
}

// createToken makes an API token for the calling operator. It is shown
// once, in this answer; the cluster keeps only its hash.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &req) {
		return
	}
	token := "lnt_" + newToken()
	val, ok := a.write(w, r, p, &command.CreateToken{ID: newID(), OperatorID: p.Operator.ID, Name: req.Name, TokenHash: HashToken(token)})
	if !ok {
		return
	}
	var t state.Token
	jsonUnmarshal(val, &t)
	writeJSON(w, http.StatusCreated, tokenView{ID: t.ID, Name: t.Name, OperatorID: t.OperatorID, CreatedAt: t.CreatedAt, Token: token})
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request, p *Principal) {
	if _, ok := a.write(w, r, p, &command.DeleteToken{ID: r.PathValue("id"), AccountID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}
