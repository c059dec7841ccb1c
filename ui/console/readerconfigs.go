package console

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"lintel/consensus/state"
	"lintel/consensus/state/readerconfig"
	"lintel/ui/api"
)

// ConfigRow is one reader configuration in the list (seed 003, figure 52's table).
type ConfigRow struct {
	ID, Name, Description string
	Cards                 int
}

// ConfigsPage is a site's reader configurations with the import form.
type ConfigsPage struct {
	SiteID, SiteName string
	Rows             []ConfigRow
	CanCreate        bool
	CanDelete        bool
	Error, Notice    string
}

func (c *Console) configsPage(p *api.Principal, site string) (ConfigsPage, bool) {
	v := ConfigsPage{SiteID: site, CanCreate: p.Profile.Allows("reader_configs", "create"), CanDelete: p.Profile.Allows("reader_configs", "delete")}
	found := false
	c.svc.Read(func(s *state.State) {
		x, ok := siteOf(s, p, site)
		if !ok {
			return
		}
		found, v.SiteName = true, x.Name
		uses := map[string]int{}
		for card := range s.SiteCards(site, false, "", "") {
			uses[strings.ToLower(card.ReaderConfig)]++
		}
		for _, rc := range s.ReaderConfigs.All() {
			if rc.SiteID == site {
				v.Rows = append(v.Rows, ConfigRow{ID: rc.ID, Name: rc.Name, Description: rc.Settings.Description, Cards: uses[strings.ToLower(rc.Name)]})
			}
		}
	})
	slices.SortFunc(v.Rows, func(a, b ConfigRow) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return v, found
}

// readerConfigs serves GET /sites/{id}/reader-configs.
func (c *Console) readerConfigs(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	c.showConfigs(w, r, p, r.PathValue("id"), nil, configNotice(r.URL.Query().Get("done")))
}

func configNotice(done string) string {
	switch done {
	case "import":
		return "The reader configuration was imported."
	case "delete":
		return "The reader configuration was deleted."
	}
	return ""
}

func (c *Console) showConfigs(w http.ResponseWriter, r *http.Request, p *api.Principal, site string, ref *refusal, notice string) {
	if !p.Profile.Allows("reader_configs", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing reader configurations; ask an administrator.")
		return
	}
	v, ok := c.configsPage(p, site)
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
	render(w, r, status, ReaderConfigsPage(withSite(c.chrome(r, p, "reader-configs"), site, "/ws?view=reader-configs&site="+url.QueryEscape(site)), v))
}

// importReaderConfig serves POST /sites/{id}/reader-configs: the file of
// the upload form goes to the API as it is.
func (c *Console) importReaderConfig(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	site := r.PathValue("id")
	if !p.Profile.Allows("reader_configs", "create") {
		c.forbidden(w, r, p, "Your profile does not allow importing reader configurations; ask an administrator.")
		return
	}
	src, err := uploaded(r, "file", readerconfig.MaxSize)
	if err != nil {
		c.showConfigs(w, r, p, site, &refusal{http.StatusBadRequest, err.Error()}, "")
		return
	}
	if _, _, ref := c.callAPI(r, http.MethodPost, "/api/v1/sites/"+url.PathEscape(site)+"/reader-configs", bytes.NewReader(src), "text/plain"); ref != nil {
		c.showConfigs(w, r, p, site, ref, "")
		return
	}
	http.Redirect(w, r, sitePage(site, "/reader-configs")+"?done=import", http.StatusSeeOther)
}

// deleteReaderConfig serves POST /reader-configs/{id}/delete.
func (c *Console) deleteReaderConfig(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	id := r.PathValue("id")
	site := ""
	c.svc.Read(func(s *state.State) {
		if rc, ok := s.ReaderConfigs.Get(id); ok && rc.AccountID == p.Account.ID {
			site = rc.SiteID
		}
	})
	if site == "" {
		c.missing(w, r, p, "That reader configuration no longer exists.")
		return
	}
	if _, _, ref := c.callAPI(r, http.MethodDelete, "/api/v1/reader-configs/"+url.PathEscape(id), nil, ""); ref != nil {
		if ref.status == http.StatusConflict {
			ref.message += " Delete or move the cards and configurators that use it first (Users (VCards) of this site)."
		}
		c.showConfigs(w, r, p, site, ref, "")
		return
	}
	http.Redirect(w, r, sitePage(site, "/reader-configs")+"?done=delete", http.StatusSeeOther)
}

// ConfigPreview is one reader configuration as figure 52 shows it.
type ConfigPreview struct {
	ID, SiteID, SiteName string
	Settings             readerconfig.Config
	Source               string
	Show                 string // full, reader, chips
}

// readerConfig serves GET /reader-configs/{id}?show=full|reader|chips.
func (c *Console) readerConfig(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.Allows("reader_configs", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing reader configurations; ask an administrator.")
		return
	}
	v := ConfigPreview{ID: r.PathValue("id"), Show: r.URL.Query().Get("show")}
	if v.Show != "reader" && v.Show != "chips" {
		v.Show = "full"
	}
	found := false
	c.svc.Read(func(s *state.State) {
		rc, ok := s.ReaderConfigs.Get(v.ID)
		if !ok || rc.AccountID != p.Account.ID || !p.CanSite(rc.SiteID) {
			return
		}
		found = true
		v.SiteID, v.SiteName, v.Settings, v.Source = rc.SiteID, s.Sites.At(rc.SiteID).Name, rc.Settings, rc.Source
	})
	if !found {
		c.missing(w, r, p, "There is no such reader configuration in your account.")
		return
	}
	render(w, r, http.StatusOK, ReaderConfigPage(withSite(c.chrome(r, p, "reader-configs"), v.SiteID, "/ws"), v))
}

// onOff is the preview's word for a setting.
func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// rangeWord is an identification mode's setting in the seed's words.
func rangeWord(r readerconfig.Range) string {
	switch r {
	case readerconfig.Contact:
		return "Contact"
	case readerconfig.VeryShort:
		return "Very Short"
	case readerconfig.Short:
		return "Short"
	case readerconfig.Medium:
		return "Medium"
	case readerconfig.Long:
		return "Long"
	}
	return "Off"
}

// errNoFile: the form came without a file (or with an empty one).
var errNoFile = errors.New("choose a file first")

// uploaded reads one file of a multipart form, at most limit bytes.
func uploaded(r *http.Request, field string, limit int64) ([]byte, error) {
	// Files past 1 MiB go to a temporary file, not memory.
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		return nil, errors.New("choose a file and send the form again (the upload could not be read: " + err.Error() + ")")
	}
	f, _, err := r.FormFile(field)
	if err != nil {
		return nil, errNoFile
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, errors.New("the file could not be read; send it again")
	}
	if int64(len(b)) > limit {
		return nil, errors.New("the file is too large")
	}
	if len(b) == 0 {
		return nil, errNoFile
	}
	return b, nil
}

// configsView keeps the list live.
type configsView struct {
	c    *Console
	site string
}

func (v configsView) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "reader_configs", "cards") {
		return nil
	}
	page, ok := v.c.configsPage(p, v.site)
	if !ok {
		return nil
	}
	return ConfigTable(page).Render(ctx, w)
}
