package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// CardForm is the Add and Edit form of a virtual user card (seed 003,
// figures 56 and 60, and the field-lock table of "Modifying a virtual user card").
type CardForm struct {
	SiteID, SiteName string
	CardID           string // empty: a new card
	Status           string // of the card edited
	Kind             string // private_id or device_id
	FirstName        string
	LastName         string
	Email            string
	Phone            string
	Config           string
	PrivateID        string
	Configs          []string // the site's reader configurations
	Error, Field     string
}

// Locked tells why a field cannot change on the card edited; "" when it can.
func (f CardForm) Locked(field string) string {
	if f.CardID == "" || state.CardFieldOpen(field, f.Status) {
		return ""
	}
	return "Cannot be changed on a card that is " + statusWord(f.Status) + "."
}

func (c *Console) siteConfigs(p *api.Principal, site string) (name string, configs []string, ok bool) {
	c.svc.Read(func(s *state.State) {
		x, found := siteOf(s, p, site)
		if !found {
			return
		}
		ok, name = true, x.Name
		for _, rc := range s.ReaderConfigs.All() {
			if rc.SiteID == site {
				configs = append(configs, rc.Name)
			}
		}
	})
	slices.Sort(configs)
	return name, configs, ok
}

// newCard serves GET /sites/{id}/cards/new.
func (c *Console) newCard(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	f := CardForm{SiteID: r.PathValue("id"), Kind: state.KindPrivateID}
	c.showCardForm(w, r, p, f, nil)
}

func (c *Console) showCardForm(w http.ResponseWriter, r *http.Request, p *api.Principal, f CardForm, ref *refusal) {
	right := "create"
	if f.CardID != "" {
		right = "edit"
	}
	if !p.Profile.Allows("cards", right) {
		c.forbidden(w, r, p, "Your profile does not allow this on virtual access cards; ask an administrator.")
		return
	}
	name, configs, ok := c.siteConfigs(p, f.SiteID)
	if !ok {
		c.missing(w, r, p, "There is no such customer site in your account.")
		return
	}
	f.SiteName, f.Configs = name, configs
	if f.Config == "" && len(configs) > 0 {
		f.Config = configs[0]
	}
	status := http.StatusOK
	if ref != nil {
		status, f.Error = ref.status, ref.message
	}
	render(w, r, status, CardFormPage(withSite(c.chrome(r, p, "cards"), f.SiteID, "/ws"), f))
}

func formCard(r *http.Request) CardForm {
	v := r.PostForm
	f := CardForm{Kind: v.Get("kind"), FirstName: strings.TrimSpace(v.Get("first_name")), LastName: strings.TrimSpace(v.Get("last_name")),
		Email: strings.TrimSpace(v.Get("email")), Phone: strings.TrimSpace(v.Get("phone")), Config: v.Get("reader_config"), PrivateID: strings.TrimSpace(v.Get("private_id"))}
	if f.Kind != state.KindDeviceID {
		f.Kind = state.KindPrivateID
	}
	return f
}

// createCard serves POST /sites/{id}/cards.
func (c *Console) createCard(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	site := r.PathValue("id")
	if err := r.ParseForm(); err != nil {
		c.showCardForm(w, r, p, CardForm{SiteID: site}, &refusal{http.StatusBadRequest, formError(err)})
		return
	}
	f := formCard(r)
	f.SiteID = site
	body := map[string]any{"first_name": f.FirstName, "last_name": f.LastName, "email": f.Email, "phone": f.Phone, "kind": f.Kind}
	if f.Kind == state.KindPrivateID {
		body["reader_config"], body["private_id"] = f.Config, f.PrivateID
	}
	b, _ := json.Marshal(body)
	_, out, ref := c.callAPI(r, http.MethodPost, "/api/v1/sites/"+url.PathEscape(site)+"/cards", bytes.NewReader(b), "application/json")
	if ref != nil {
		f.Field = errorField(out)
		c.showCardForm(w, r, p, f, ref)
		return
	}
	http.Redirect(w, r, sitePage(site, "/cards")+"?done=create&n=1", http.StatusSeeOther)
}

// errorField is the field an API refusal names, to mark it in the form.
func errorField(out []byte) string {
	var e struct{ Error struct{ Field string } }
	json.Unmarshal(out, &e)
	return e.Error.Field
}

// editCard serves GET /cards/{id}/edit.
func (c *Console) editCard(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	f, ok := c.cardForm(p, r.PathValue("id"))
	if !ok {
		c.missing(w, r, p, "There is no such card in your account.")
		return
	}
	c.showCardForm(w, r, p, f, nil)
}

func (c *Console) cardForm(p *api.Principal, id string) (CardForm, bool) {
	var f CardForm
	ok := false
	c.svc.Read(func(s *state.State) {
		card, found := s.Cards.Get(id)
		if !found || card.AccountID != p.Account.ID || !p.CanSite(card.SiteID) || card.Kind == state.KindConfig {
			return
		}
		ok = true
		f = CardForm{SiteID: card.SiteID, CardID: card.ID, Status: card.Status, Kind: card.Kind, FirstName: card.FirstName, LastName: card.LastName,
			Email: card.Email, Phone: card.Phone, Config: card.ReaderConfig, PrivateID: card.PrivateID}
	})
	return f, ok
}

// updateCard serves POST /cards/{id}/edit: only the fields that changed and
// that the card's status leaves open go to the API.
func (c *Console) updateCard(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	cur, ok := c.cardForm(p, r.PathValue("id"))
	if !ok {
		c.missing(w, r, p, "There is no such card in your account.")
		return
	}
	if err := r.ParseForm(); err != nil {
		c.showCardForm(w, r, p, cur, &refusal{http.StatusBadRequest, formError(err)})
		return
	}
	f := formCard(r)
	patch := map[string]any{}
	for _, x := range []struct{ field, was, now string }{
		{"first_name", cur.FirstName, f.FirstName}, {"last_name", cur.LastName, f.LastName}, {"phone", cur.Phone, f.Phone},
		{"email", cur.Email, f.Email}, {"reader_config", cur.Config, f.Config}, {"private_id", cur.PrivateID, f.PrivateID},
	} {
		if _, sent := r.PostForm[x.field]; sent && x.now != x.was {
			patch[x.field] = x.now
		}
	}
	if len(patch) > 0 {
		b, _ := json.Marshal(patch)
		_, out, ref := c.callAPI(r, http.MethodPatch, "/api/v1/cards/"+url.PathEscape(cur.CardID), bytes.NewReader(b), "application/json")
		if ref != nil {
			f.SiteID, f.CardID, f.Status, f.Kind, f.Field = cur.SiteID, cur.CardID, cur.Status, cur.Kind, errorField(out)
			c.showCardForm(w, r, p, f, ref)
			return
		}
	}
	http.Redirect(w, r, sitePage(cur.SiteID, "/cards")+"?done=edit&n=1", http.StatusSeeOther)
}

// ImportResult is what the import form shows after a file: how many cards
// were made, or every row error next to its row number.
type ImportResult struct {
	SiteID, SiteName string
	Created          int
	Error            string
	Rows             []ImportRowError
}

// ImportRowError is one refused row of an import file.
type ImportRowError struct {
	Row            int
	Field, Message string
}

// importCards serves POST /sites/{id}/cards/import: the uploaded file goes
// to the API's import, which checks every row before it makes any card.
func (c *Console) importCards(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	site := r.PathValue("id")
	if !p.Profile.Allows("cards", "create") {
		c.forbidden(w, r, p, "Your profile does not allow importing cards; ask an administrator.")
		return
	}
	name, _, ok := c.siteConfigs(p, site)
	if !ok {
		c.missing(w, r, p, "There is no such customer site in your account.")
		return
	}
	res := ImportResult{SiteID: site, SiteName: name}
	status := http.StatusOK
	data, err := uploaded(r, "file", maxImport)
	if err != nil {
		res.Error, status = sentence(err.Error()), http.StatusBadRequest
	} else {
		kind := "text/csv"
		if fh := r.MultipartForm.File["file"]; len(fh) > 0 && strings.EqualFold(path.Ext(fh[0].Filename), ".xlsx") {
			kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		}
		code, out, ref := c.callAPI(r, http.MethodPost, "/api/v1/sites/"+url.PathEscape(site)+"/cards/import", bytes.NewReader(data), kind)
		if ref != nil {
			status, res.Error = code, ref.message
			var e struct {
				Rows []struct {
					Row            int
					Field, Message string
				}
			}
			json.Unmarshal(out, &e)
			for _, x := range e.Rows {
				res.Rows = append(res.Rows, ImportRowError{Row: x.Row, Field: x.Field, Message: sentence(x.Message)})
			}
		} else {
			var ok struct{ Created int }
			json.Unmarshal(out, &ok)
			res.Created = ok.Created
		}
	}
	render(w, r, status, ImportPage(withSite(c.chrome(r, p, "cards"), site, "/ws"), res))
}

// importForm serves GET /sites/{id}/cards/import.
func (c *Console) importForm(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	site := r.PathValue("id")
	name, _, ok := c.siteConfigs(p, site)
	if !ok {
		c.missing(w, r, p, "There is no such customer site in your account.")
		return
	}
	render(w, r, http.StatusOK, ImportPage(withSite(c.chrome(r, p, "cards"), site, "/ws"), ImportResult{SiteID: site, SiteName: name, Created: -1}))
}

func createdLine(n int) string { return fmt.Sprintf("%d %s created.", n, plural(n, "card", "cards")) }
