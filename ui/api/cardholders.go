package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

func jsonUnmarshal(b []byte, v any) { json.Unmarshal(b, v) }

type cardholderView struct {
	ID         string            `json:"id"`
	FirstName  string            `json:"first_name"`
	LastName   string            `json:"last_name"`
	Email      string            `json:"email"`
	Phone      string            `json:"phone"`
	Fields     map[string]string `json:"fields"`
	Visitor    bool              `json:"visitor"`
	ValidFrom  *time.Time        `json:"valid_from"`
	ValidUntil *time.Time        `json:"valid_until"`
	CreatedAt  time.Time         `json:"created_at"`
	Cards      []string          `json:"cards"`
}

func viewCardholder(s *state.State, h state.Cardholder) cardholderView {
	return viewCardholderWith(h, cardsByHolder(s, h.ID))
}

// cardsByHolder maps holders to their card ids, sorted, in one pass over the
// cards (only holder, when set).
func cardsByHolder(s *state.State, holder string) map[string][]string {
	out := map[string][]string{}
	for _, c := range s.Cards.All() {
		if holder == "" || c.CardholderID == holder {
			out[c.CardholderID] = append(out[c.CardholderID], c.ID)
		}
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out
}

func viewCardholderWith(h state.Cardholder, cards map[string][]string) cardholderView {
	v := cardholderView{ID: h.ID, FirstName: h.FirstName, LastName: h.LastName, Email: h.Email, Phone: h.Phone, Fields: h.Fields,
		Visitor: h.Visitor, ValidFrom: h.ValidFrom, ValidUntil: h.ValidUntil, CreatedAt: h.CreatedAt, Cards: cards[h.ID]}
	if v.Fields == nil {
		v.Fields = map[string]string{}
	}
	if v.Cards == nil {
		v.Cards = []string{}
	}
	return v
}

func cardholderKey(v cardholderView) string { return v.LastName + "\x00" + v.FirstName + "\x00" + v.ID }

func (a *API) createCardholder(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		FirstName  string            `json:"first_name"`
		LastName   string            `json:"last_name"`
		Email      string            `json:"email"`
		Phone      string            `json:"phone"`
		Fields     map[string]string `json:"fields"`
		Visitor    bool              `json:"visitor"`
		ValidFrom  *time.Time        `json:"valid_from"`
		ValidUntil *time.Time        `json:"valid_until"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.CreateCardholder{ID: newID(), AccountID: p.Account.ID, FirstName: req.FirstName,
		LastName: req.LastName, Email: req.Email, Phone: req.Phone, Fields: req.Fields, Visitor: req.Visitor,
		ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil})
	if !ok {
		return
	}
	var h state.Cardholder
	json.Unmarshal(val, &h)
	var v cardholderView
	a.svc.Read(func(s *state.State) { v = viewCardholder(s, h) })
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) listCardholders(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, page(a.accountCardholders(p, q), cardholderKey, q))
}

// accountCardholders lists the account's cardholders matching q, in list order.
func (a *API) accountCardholders(p *Principal, q listQuery) []cardholderView {
	var items []cardholderView
	a.svc.Read(func(s *state.State) {
		cards := cardsByHolder(s, "")
		for _, h := range s.Cardholders.All() {
			if h.AccountID == p.Account.ID && matches(q.Q, h.FirstName, h.LastName, h.Email, h.Phone) {
				items = append(items, viewCardholderWith(h, cards))
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return cardholderKey(items[i]) < cardholderKey(items[j]) })
	return items
}

func (a *API) getCardholder(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	var v cardholderView
	found := false
	a.svc.Read(func(s *state.State) {
		if h, ok := s.Cardholders.Get(r.PathValue("id")); ok && h.AccountID == p.Account.ID {
			v, found = viewCardholder(s, h), true
		}
	})
	if !found {
		writeError(w, http.StatusNotFound, "cardholder_not_found", "", "there is no cardholder "+r.PathValue("id")+" in your account")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) patchSite(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		PrivateIDDuplicates *bool   `json:"private_id_duplicates"`
		CardCost            *int64  `json:"card_cost"`
		ActivationTTL       *string `json:"activation_ttl"`
		OfflineGrace        *string `json:"offline_grace"`
		OfflinePolicy       *string `json:"offline_policy"`
		TimeZone            *string `json:"time_zone"`
	}
	if !decode(w, r, &req) {
		return
	}
	b := &command.UpdateSite{ID: site.ID, AccountID: p.Account.ID, PrivateIDDuplicates: req.PrivateIDDuplicates,
		CardCost: req.CardCost, OfflinePolicy: req.OfflinePolicy, TimeZone: req.TimeZone}
	for _, d := range []struct {
		field string
		in    *string
		out   **time.Duration
	}{{"activation_ttl", req.ActivationTTL, &b.ActivationTTL}, {"offline_grace", req.OfflineGrace, &b.OfflineGrace}} {
		if d.in == nil {
			continue
		}
		v, err := time.ParseDuration(*d.in)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_value", d.field, d.field+" is a duration such as \"168h\" or \"30m\"")
			return
		}
		*d.out = &v
	}
	val, ok := a.write(w, r, p, b)
	if !ok {
		return
	}
	var x state.Site
	json.Unmarshal(val, &x)
	var v siteView
	a.svc.Read(func(s *state.State) { v = viewSite(s, x) })
	writeJSON(w, http.StatusOK, v)
}

func (a *API) patchCardholder(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		FirstName  *string            `json:"first_name"`
		LastName   *string            `json:"last_name"`
		Email      *string            `json:"email"`
		Phone      *string            `json:"phone"`
		Fields     *map[string]string `json:"fields"`
		ValidFrom  *time.Time         `json:"valid_from"`
		ValidUntil *time.Time         `json:"valid_until"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.UpdateCardholder{ID: r.PathValue("id"), AccountID: p.Account.ID, FirstName: req.FirstName,
		LastName: req.LastName, Email: req.Email, Phone: req.Phone, Fields: req.Fields, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil})
	if !ok {
		return
	}
	var h state.Cardholder
	json.Unmarshal(val, &h)
	var v cardholderView
	a.svc.Read(func(s *state.State) { v = viewCardholder(s, h) })
	writeJSON(w, http.StatusOK, v)
}

// deleteCardholder deletes a person and their cards by the card rules.
func (a *API) deleteCardholder(w http.ResponseWriter, r *http.Request, p *Principal) {
	if _, ok := a.write(w, r, p, &command.DeleteCardholder{ID: r.PathValue("id"), AccountID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}
