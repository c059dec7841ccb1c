package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// ConfiguratorRow is one configurator with its assigned configurations
// (seed 003, figures 70-87): the virtual configuration cards, free of credit.
type ConfiguratorRow struct {
	ID, FirstName, LastName, Email, Phone string
	Configs                               []CardRow
}

// ConfiguratorsPage is a site's configurators.
type ConfiguratorsPage struct {
	SiteID, SiteName string
	Rows             []ConfiguratorRow
	ReaderConfigs    []string
	CanCreate        bool
	CanEdit          bool
	CanDelete        bool
	Error, Notice    string
}

func (c *Console) configuratorsPage(p *api.Principal, site string) (ConfiguratorsPage, bool) {
	v := ConfiguratorsPage{SiteID: site, CanCreate: p.Profile.Allows("configurators", "create"),
		CanEdit: p.Profile.Allows("configurators", "edit"), CanDelete: p.Profile.Allows("configurators", "delete")}
	found := false
	c.svc.Read(func(s *state.State) {
		x, ok := siteOf(s, p, site)
		if !ok {
			return
		}
		found, v.SiteName = true, x.Name
		byCf := map[string][]CardRow{}
		for card := range s.SiteCards(site, true, "", "") {
			byCf[card.CardholderID] = append(byCf[card.CardholderID], rowOf(card))
		}
		for _, cf := range s.Configurators.All() {
			if cf.SiteID == site {
				v.Rows = append(v.Rows, ConfiguratorRow{ID: cf.ID, FirstName: cf.FirstName, LastName: cf.LastName, Email: cf.Email, Phone: cf.Phone, Configs: byCf[cf.ID]})
			}
		}
		for _, rc := range s.ReaderConfigs.All() {
			if rc.SiteID == site {
				v.ReaderConfigs = append(v.ReaderConfigs, rc.Name)
			}
		}
	})
	slices.SortFunc(v.Rows, func(a, b ConfiguratorRow) int {
		return strings.Compare(strings.ToLower(a.LastName+"\x00"+a.FirstName), strings.ToLower(b.LastName+"\x00"+b.FirstName))
	})
	slices.Sort(v.ReaderConfigs)
	return v, found
}

// configurators serves GET /sites/{id}/configurators.
func (c *Console) configurators(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	notice := map[string]string{"add": "The configurator was added.", "assign": "The configuration was assigned.",
		"send": "Sent.", "revoke": "Revoke requested.", "delete": "Deleted."}[r.URL.Query().Get("done")]
	c.showConfigurators(w, r, p, r.PathValue("id"), nil, notice)
}

func (c *Console) showConfigurators(w http.ResponseWriter, r *http.Request, p *api.Principal, site string, ref *refusal, notice string) {
	if !p.Profile.Allows("configurators", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing configurators; ask an administrator.")
		return
	}
	v, ok := c.configuratorsPage(p, site)
	if !ok {
		c.missing(w, r, p, "There is no such customer site in your account.")
		return
	}
	rememberSite(w, site)
	status := http.StatusOK
	if ref != nil {
		status, v.Error = ref.status, ref.message
	}
	v.Notice = notice
	render(w, r, status, ConfiguratorsView(withSite(c.chrome(r, p, "configurators"), site, "/ws?view=configurators&site="+url.QueryEscape(site)), v))
}

// configuratorPost serves the configurator forms of a site:
// POST /sites/{id}/configurators (add), and POST /sites/{id}/configurators/do
// with do=assign|delete-configurator|send|revoke|delete and the target id.
func (c *Console) configuratorPost(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	site := r.PathValue("id")
	if err := r.ParseForm(); err != nil {
		c.showConfigurators(w, r, p, site, &refusal{http.StatusBadRequest, formError(err)}, "")
		return
	}
	f := r.PostForm
	var method, path, done string
	var body []byte
	switch f.Get("do") {
	case "":
		method, path, done = http.MethodPost, "/api/v1/sites/"+url.PathEscape(site)+"/configurators", "add"
		body, _ = json.Marshal(map[string]string{"first_name": strings.TrimSpace(f.Get("first_name")), "last_name": strings.TrimSpace(f.Get("last_name")),
			"email": strings.TrimSpace(f.Get("email")), "phone": strings.TrimSpace(f.Get("phone"))})
	case "assign":
		method, path, done = http.MethodPost, "/api/v1/configurators/"+url.PathEscape(f.Get("id"))+"/config-cards", "assign"
		body, _ = json.Marshal(map[string]string{"reader_config": f.Get("reader_config")})
	case "delete-configurator":
		method, path, done = http.MethodDelete, "/api/v1/configurators/"+url.PathEscape(f.Get("id")), "delete"
	case "send", "revoke":
		method, path, done = http.MethodPost, "/api/v1/config-cards/"+url.PathEscape(f.Get("id"))+"/"+f.Get("do"), f.Get("do")
	case "delete":
		method, path, done = http.MethodDelete, "/api/v1/config-cards/"+url.PathEscape(f.Get("id")), "delete"
	default:
		c.showConfigurators(w, r, p, site, &refusal{http.StatusBadRequest, "Choose one of the buttons."}, "")
		return
	}
	var ref *refusal
	if body != nil {
		_, _, ref = c.callAPI(r, method, path, bytes.NewReader(body), "application/json")
	} else {
		_, _, ref = c.callAPI(r, method, path, nil, "")
	}
	if ref != nil {
		c.showConfigurators(w, r, p, site, ref, "")
		return
	}
	http.Redirect(w, r, sitePage(site, "/configurators")+"?done="+done, http.StatusSeeOther)
}

type configuratorsLive struct {
	c    *Console
	site string
}

func (v configuratorsLive) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "configurators", "cards", "reader_configs") {
		return nil
	}
	page, ok := v.c.configuratorsPage(p, v.site)
	if !ok {
		return nil
	}
	return ConfiguratorTable(page).Render(ctx, w)
}

// configActions are the buttons of a configuration card's status.
func configActions(v ConfiguratorsPage, status string) []rowAction {
	return statusActions(status, v.CanEdit, v.CanDelete, false)
}
