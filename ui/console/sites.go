package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/ui/api"
)

// refusal is why a write did not happen, for the person and for the status line.
type refusal struct {
	status  int
	message string
}

func rejected(rej *state.Rejection) *refusal {
	return &refusal{api.StatusOf(rej), sentence(rej.Message)}
}

// write commits one command for the operator, as the API does; nil means committed
// and applied on this node, so the page that follows shows it.
func (c *Console) write(r *http.Request, p *api.Principal, body command.Body) *refusal {
	cmd := command.Command{Header: command.Header{RequestID: api.NewID(), Actor: p.Operator.ID, At: c.now().UTC()}, Body: body}
	rej := state.Admit(cmd)
	if rej == nil {
		rej = state.Validate(cmd)
	}
	if rej != nil {
		return rejected(rej)
	}
	ctx, cancel := writeContext(r)
	defer cancel()
	res, err := c.svc.Write(ctx, cmd)
	switch {
	case errors.Is(err, api.ErrNoQuorum):
		return &refusal{http.StatusServiceUnavailable, "The cluster has no leader right now, so nothing was changed. Try again in a moment."}
	case errors.Is(err, api.ErrUnknownOutcome):
		return &refusal{http.StatusServiceUnavailable, "The leader changed while this change was in flight; it may or may not have been made. Check the list before trying again."}
	case err != nil:
		return &refusal{http.StatusServiceUnavailable, "The change could not be completed (" + err.Error() + "). Try again in a moment."}
	case res.Err != nil:
		return rejected(res.Err)
	}
	return nil
}

// siteRows lists the operator's sites in the seed's order: by name, ignoring case.
func (c *Console) siteRows(p *api.Principal) []SiteRow {
	var rows []SiteRow
	c.svc.Read(func(s *state.State) {
		for _, x := range s.SitesOf(p.Account.ID) {
			if !p.CanSite(x.ID) {
				continue
			}
			u := s.SiteUsage(x.ID)
			rows = append(rows, SiteRow{
				ID: x.ID, Name: x.Name, CreatedAt: x.CreatedAt.In(c.loc),
				Configurations: u.Configurations, Users: u.Users, Configurators: u.Configurators,
			})
		}
	})
	sortRows(rows)
	return rows
}

// siteExportURL is the API's spreadsheet of the list, with the same search.
func siteExportURL(q string) string {
	if q == "" {
		return "/api/v1/sites/export.xlsx"
	}
	return "/api/v1/sites/export.xlsx?q=" + url.QueryEscape(q)
}

func sortRows(rows []SiteRow) {
	slices.SortFunc(rows, func(a, b SiteRow) int {
		if d := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// showSites renders the dashboard; a refusal is shown above the list and sets the status.
func (c *Console) showSites(w http.ResponseWriter, r *http.Request, p *api.Principal, ref *refusal, name string) {
	c.showSitesPage(w, r, p, ref, name, "")
}

// showSitesPage renders the list; blocked is a site whose delete was refused
// (the message links to its dashboard, where its cards and configurations are).
func (c *Console) showSitesPage(w http.ResponseWriter, r *http.Request, p *api.Principal, ref *refusal, name, blocked string) {
	page := SitesPage{Blocked: blocked,
		Chrome:    c.chrome(r, p, "sites"),
		CanView:   p.Profile.Allows("sites", "view"),
		CanCreate: p.Profile.Allows("sites", "create"),
		CanDelete: p.Profile.Allows("sites", "delete"),
		Name:      name,
	}
	page.Q = strings.TrimSpace(r.URL.Query().Get("q"))
	if page.CanView {
		for _, row := range c.siteRows(p) {
			if page.Q == "" || strings.Contains(strings.ToLower(row.Name), strings.ToLower(page.Q)) {
				page.Rows = append(page.Rows, row)
			}
		}
	}
	status := http.StatusOK
	if ref != nil {
		status, page.Error = ref.status, ref.message
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
	}
	render(w, r, status, Sites(page))
}

func (c *Console) sites(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	c.showSites(w, r, p, nil, "")
}

func (c *Console) addSite(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.Allows("sites", "create") {
		c.showSites(w, r, p, &refusal{http.StatusForbidden, "Your profile does not allow adding customer sites; ask an administrator."}, "")
		return
	}
	if err := r.ParseForm(); err != nil {
		c.showSites(w, r, p, &refusal{http.StatusBadRequest, formError(err)}, "")
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if name == "" {
		c.showSites(w, r, p, &refusal{http.StatusBadRequest, "Enter a Customer Site Name."}, "")
		return
	}
	if ref := c.write(r, p, &command.CreateSite{ID: api.NewID(), AccountID: p.Account.ID, Name: name}); ref != nil {
		c.showSites(w, r, p, ref, name)
		return
	}
	// Post/redirect/get: a reload of the list does not post the form again.
	http.Redirect(w, r, "/sites", http.StatusSeeOther)
}

func (c *Console) deleteSite(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.Allows("sites", "delete") {
		c.showSites(w, r, p, &refusal{http.StatusForbidden, "Your profile does not allow deleting customer sites; ask an administrator."}, "")
		return
	}
	id := r.PathValue("id")
	found := false
	c.svc.Read(func(s *state.State) { _, found = siteOf(s, p, id) })
	if !found {
		c.showSites(w, r, p, &refusal{http.StatusNotFound, "That customer site no longer exists; the list below is up to date."}, "")
		return
	}
	if ref := c.write(r, p, &command.DeleteSite{ID: id, AccountID: p.Account.ID}); ref != nil {
		if ref.status == http.StatusConflict {
			c.showSitesPage(w, r, p, ref, "", id)
			return
		}
		c.showSites(w, r, p, ref, "")
		return
	}
	http.Redirect(w, r, "/sites", http.StatusSeeOther)
}
