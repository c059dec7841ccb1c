package api

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

type configuratorView struct {
	ID        string            `json:"id"`
	SiteID    string            `json:"site_id"`
	FirstName string            `json:"first_name"`
	LastName  string            `json:"last_name"`
	Email     string            `json:"email"`
	Phone     string            `json:"phone"`
	Fields    map[string]string `json:"fields"`
	CreatedAt time.Time         `json:"created_at"`
}

func viewConfigurator(cf state.Configurator) configuratorView {
	v := configuratorView{ID: cf.ID, SiteID: cf.SiteID, FirstName: cf.FirstName, LastName: cf.LastName, Email: cf.Email,
		Phone: cf.Phone, Fields: cf.Fields, CreatedAt: cf.CreatedAt}
	if v.Fields == nil {
		v.Fields = map[string]string{}
	}
	return v
}

func configuratorKey(v configuratorView) string {
	return strings.ToLower(v.LastName+"\x00"+v.FirstName) + "\x00" + v.ID
}

func (a *API) listConfigurators(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, page(a.siteConfigurators(site.ID, q), configuratorKey, q))
}

// siteConfigurators lists a site's configurators matching q, in list order.
func (a *API) siteConfigurators(siteID string, q listQuery) []configuratorView {
	var items []configuratorView
	a.svc.Read(func(s *state.State) {
		for _, cf := range s.Configurators.All() {
			if cf.SiteID == siteID && matches(q.Q, cf.FirstName, cf.LastName, cf.Email, cf.Phone) {
				items = append(items, viewConfigurator(cf))
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return configuratorKey(items[i]) < configuratorKey(items[j]) })
	return items
}

// siteConfigCards lists a site's configuration cards (of one configurator
// when holder is set) matching q, in list order.
func (a *API) siteConfigCards(siteID, holder string, q listQuery) []cardView {
	var items []cardView
	a.svc.Read(func(s *state.State) {
		for c := range s.SiteCards(siteID, true, q.Status, "") {
			if (holder == "" || c.CardholderID == holder) && cardMatches(c, q) {
				items = append(items, viewCard(c))
			}
		}
	})
	return items
}

func (a *API) createConfigurator(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		FirstName string            `json:"first_name"`
		LastName  string            `json:"last_name"`
		Email     string            `json:"email"`
		Phone     string            `json:"phone"`
		Fields    map[string]string `json:"fields"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.CreateConfigurator{ID: newID(), AccountID: p.Account.ID, SiteID: site.ID,
		FirstName: req.FirstName, LastName: req.LastName, Email: req.Email, Phone: req.Phone, Fields: req.Fields})
	if ok {
		var cf state.Configurator
		jsonUnmarshal(val, &cf)
		writeJSON(w, http.StatusCreated, viewConfigurator(cf))
	}
}

func (a *API) findConfigurator(w http.ResponseWriter, p *Principal, id string) (state.Configurator, bool) {
	var cf state.Configurator
	ok := a.readFresh(func(s *state.State) bool {
		var found bool
		cf, found = s.Configurators.Get(id)
		return found && cf.AccountID == p.Account.ID && p.CanSite(cf.SiteID)
	})
	if !ok {
		writeError(w, http.StatusNotFound, "configurator_not_found", "", "there is no configurator "+id+" in your account")
	}
	return cf, ok
}

func (a *API) patchConfigurator(w http.ResponseWriter, r *http.Request, p *Principal) {
	cf, ok := a.findConfigurator(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		FirstName *string            `json:"first_name"`
		LastName  *string            `json:"last_name"`
		Phone     *string            `json:"phone"`
		Fields    *map[string]string `json:"fields"`
	}
	// The email is not a field here: it cannot change (seed 003, "Modifying a configurator").
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.UpdateConfigurator{ID: cf.ID, AccountID: p.Account.ID, FirstName: req.FirstName,
		LastName: req.LastName, Phone: req.Phone, Fields: req.Fields})
	if ok {
		var x state.Configurator
		jsonUnmarshal(val, &x)
		writeJSON(w, http.StatusOK, viewConfigurator(x))
	}
}

func (a *API) deleteConfigurator(w http.ResponseWriter, r *http.Request, p *Principal) {
	cf, ok := a.findConfigurator(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	if _, ok := a.write(w, r, p, &command.DeleteConfigurator{ID: cf.ID, AccountID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

// createConfigCard assigns a reader configuration to a configurator (SPEC 4.5).
func (a *API) createConfigCard(w http.ResponseWriter, r *http.Request, p *Principal) {
	cf, ok := a.findConfigurator(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		ReaderConfig string `json:"reader_config"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.CreateConfigCard{ID: newID(), AccountID: p.Account.ID, ConfiguratorID: cf.ID, ReaderConfig: trimmed(req.ReaderConfig)})
	if ok {
		writeJSON(w, http.StatusCreated, cardFromWrite(val))
	}
}

func (a *API) listConfigCards(w http.ResponseWriter, r *http.Request, p *Principal) {
	cf, ok := a.findConfigurator(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, page(a.siteConfigCards(cf.SiteID, cf.ID, q), cardKey, q))
}
