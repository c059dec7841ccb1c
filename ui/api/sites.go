package api

import (
	"encoding/json"
	"net/http"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// siteView is a site with the counts of the site list (seed 003, figure 43).
type siteView struct {
	ID                  string    `json:"id"`
	Name                string    `json:"name"`
	CreatedAt           time.Time `json:"created_at"`
	Configurations      int       `json:"configurations"`
	Users               int       `json:"users"`
	Configurators       int       `json:"configurators"`
	PrivateIDDuplicates bool      `json:"private_id_duplicates"`
	CardCost            int64     `json:"card_cost"`
	ActivationTTL       string    `json:"activation_ttl"`
	OfflineGrace        string    `json:"offline_grace"`
	OfflinePolicy       string    `json:"offline_policy"`
	TimeZone            string    `json:"time_zone"`
}

func viewSite(s *state.State, x state.Site) siteView {
	u := s.SiteUsage(x.ID)
	return siteView{
		ID: x.ID, Name: x.Name, CreatedAt: x.CreatedAt, Configurations: u.Configurations, Users: u.Users,
		Configurators: u.Configurators, PrivateIDDuplicates: x.PrivateIDDuplicates, CardCost: x.CardCost,
		ActivationTTL: x.ActivationTTL.String(), OfflineGrace: x.OfflineGrace.String(), OfflinePolicy: x.OfflinePolicy, TimeZone: x.TimeZone,
	}
}

func siteKey(v siteView) string { return v.Name + "\x00" + v.ID }

func (a *API) listSites(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	var items []siteView
	a.svc.Read(func(s *state.State) {
		for _, x := range s.SitesOf(p.Account.ID) {
			if p.CanSite(x.ID) && matches(q.Q, x.Name) {
				items = append(items, viewSite(s, x))
			}
		}
	})
	writeJSON(w, http.StatusOK, page(items, siteKey, q))
}

func (a *API) createSite(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.CreateSite{ID: newID(), AccountID: p.Account.ID, Name: trimmed(req.Name)})
	if !ok {
		return
	}
	var site state.Site
	json.Unmarshal(val, &site)
	var v siteView
	a.svc.Read(func(s *state.State) { v = viewSite(s, site) })
	writeJSON(w, http.StatusCreated, v)
}

// findSite returns a site of the principal's account, or answers 404.
func (a *API) findSite(w http.ResponseWriter, p *Principal, id string) (siteView, bool) {
	var v siteView
	found := a.readFresh(func(s *state.State) bool {
		x, ok := s.Sites.Get(id)
		if ok && x.AccountID == p.Account.ID && p.CanSite(id) {
			v = viewSite(s, x)
			return true
		}
		return false
	})
	if !found {
		writeError(w, http.StatusNotFound, "site_not_found", "", "there is no site "+id+" in your account")
	}
	return v, found
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	if v, ok := a.findSite(w, p, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

func (a *API) deleteSite(w http.ResponseWriter, r *http.Request, p *Principal) {
	id := r.PathValue("id")
	if _, ok := a.findSite(w, p, id); !ok {
		return
	}
	if _, ok := a.write(w, r, p, &command.DeleteSite{ID: id, AccountID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}
