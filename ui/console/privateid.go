package console

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// DuplicateRow is one site of the Private ID settings (seed 003, figure 66).
type DuplicateRow struct {
	ID, Name string
	On       bool
}

// PrivateIDPage is the Private ID settings: per site, whether two cards of
// one configuration may carry the same private ID.
type PrivateIDPage struct {
	Rows    []DuplicateRow
	CanEdit bool
	Error   string
	Notice  string
}

func (c *Console) privateIDSettings(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	notice := ""
	if r.URL.Query().Get("done") == "1" {
		notice = "The setting was saved."
	}
	c.showPrivateID(w, r, p, nil, notice)
}

func (c *Console) showPrivateID(w http.ResponseWriter, r *http.Request, p *api.Principal, ref *refusal, notice string) {
	if !p.Profile.Allows("sites", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing customer sites; ask an administrator.")
		return
	}
	v := PrivateIDPage{CanEdit: p.Profile.Allows("sites", "edit"), Notice: notice}
	c.svc.Read(func(s *state.State) {
		for _, x := range s.SitesOf(p.Account.ID) {
			if p.CanSite(x.ID) {
				v.Rows = append(v.Rows, DuplicateRow{ID: x.ID, Name: x.Name, On: x.PrivateIDDuplicates})
			}
		}
	})
	slices.SortFunc(v.Rows, func(a, b DuplicateRow) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	status := http.StatusOK
	if ref != nil {
		status, v.Error = ref.status, ref.message
	}
	render(w, r, status, PrivateIDSettingsPage(c.chrome(r, p, "private-id"), v))
}

// setDuplicates serves POST /private-id-settings/{id}: on=1 or on=0.
func (c *Console) setDuplicates(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if err := r.ParseForm(); err != nil {
		c.showPrivateID(w, r, p, &refusal{http.StatusBadRequest, formError(err)}, "")
		return
	}
	body := `{"private_id_duplicates":false}`
	if r.PostForm.Get("on") == "1" {
		body = `{"private_id_duplicates":true}`
	}
	if _, _, ref := c.callAPI(r, http.MethodPatch, "/api/v1/sites/"+url.PathEscape(r.PathValue("id")), bytes.NewReader([]byte(body)), "application/json"); ref != nil {
		c.showPrivateID(w, r, p, ref, "")
		return
	}
	http.Redirect(w, r, "/private-id-settings?done=1", http.StatusSeeOther)
}
