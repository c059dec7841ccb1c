package api

import (
	"io"
	"net/http"
	"sort"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/consensus/state/readerconfig"
)

type readerConfigView struct {
	ID        string              `json:"id"`
	SiteID    string              `json:"site_id"`
	Name      string              `json:"name"`
	Settings  readerconfig.Config `json:"settings"`
	Source    string              `json:"source"`
	CreatedAt time.Time           `json:"created_at"`
}

func viewReaderConfig(rc state.ReaderConfig) readerConfigView {
	return readerConfigView{ID: rc.ID, SiteID: rc.SiteID, Name: rc.Name, Settings: rc.Settings, Source: rc.Source, CreatedAt: rc.CreatedAt}
}

func readerConfigSortKey(v readerConfigView) string { return v.Name + "\x00" + v.ID }

// importReaderConfig takes a reader configuration file as the body (SPEC 6.2).
func (a *API) importReaderConfig(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	src, err := io.ReadAll(io.LimitReader(r.Body, readerconfig.MaxSize+1))
	if err != nil || len(src) > readerconfig.MaxSize {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "", "a reader configuration file is at most 64 KiB")
		return
	}
	// Parse here too, so a bad file is answered without a trip through the log.
	if _, err := readerconfig.Parse(src); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_reader_config", "", err.Error())
		return
	}
	val, ok := a.write(w, r, p, &command.CreateReaderConfig{ID: newID(), AccountID: p.Account.ID, SiteID: site.ID, Source: string(src)})
	if !ok {
		return
	}
	var rc state.ReaderConfig
	jsonUnmarshal(val, &rc)
	writeJSON(w, http.StatusCreated, viewReaderConfig(rc))
}

func (a *API) listReaderConfigs(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, page(a.siteReaderConfigs(site.ID, q), readerConfigSortKey, q))
}

// siteReaderConfigs lists a site's reader configurations matching q, in list order.
func (a *API) siteReaderConfigs(siteID string, q listQuery) []readerConfigView {
	var items []readerConfigView
	a.svc.Read(func(s *state.State) {
		for _, rc := range s.ReaderConfigs.All() {
			if rc.SiteID == siteID && matches(q.Q, rc.Name, rc.Settings.Description) {
				items = append(items, viewReaderConfig(rc))
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return readerConfigSortKey(items[i]) < readerConfigSortKey(items[j]) })
	return items
}

func (a *API) findReaderConfig(w http.ResponseWriter, p *Principal, id string) (state.ReaderConfig, bool) {
	var rc state.ReaderConfig
	ok := a.readFresh(func(s *state.State) bool {
		var found bool
		rc, found = s.ReaderConfigs.Get(id)
		return found && rc.AccountID == p.Account.ID && p.CanSite(rc.SiteID)
	})
	if !ok {
		writeError(w, http.StatusNotFound, "reader_config_not_found", "", "there is no reader configuration "+id+" in your account")
		return rc, false
	}
	return rc, true
}

func (a *API) getReaderConfig(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	if rc, ok := a.findReaderConfig(w, p, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, viewReaderConfig(rc))
	}
}

func (a *API) deleteReaderConfig(w http.ResponseWriter, r *http.Request, p *Principal) {
	rc, ok := a.findReaderConfig(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	if _, ok := a.write(w, r, p, &command.DeleteReaderConfig{ID: rc.ID, AccountID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}
