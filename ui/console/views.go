package console

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// viewFor builds the live view a page asked for in its /ws query, and the
// profile area it needs to view (checked again on every round).
func (c *Console) viewFor(v url.Values, p *api.Principal) (liveView, string, bool) {
	var body liveView
	area := ""
	switch v.Get("view") {
	case "":
	case "welcome":
		body = welcomeView{c, v.Get("site")}
	case "site":
		body, area = siteView{c, v.Get("site")}, "sites"
	case "reader-configs":
		body, area = configsView{c, v.Get("site")}, "reader_configs"
	case "credits":
		body, area = creditsLive{c}, "credits"
	case "outbox":
		body, area = outboxLive{c}, "cards"
	case "cardholders", "visitors":
		body, area = holdersLive{c, v.Get("view") == "visitors"}, "cardholders"
	case "configurators":
		body, area = configuratorsLive{c, v.Get("site")}, "configurators"
	case "cards":
		body, area = cardsView{c, parseCardQuery(v.Get("site"), v)}, "cards"
	default:
		return nil, "", false
	}
	if area != "" && !p.Profile.Allows(area, "view") {
		return nil, "", false
	}
	return chromeView{c, body}, area, true
}

// chromeView adds the header's live parts (the credit) to a page's own.
type chromeView struct {
	c    *Console
	body liveView
}

func (v chromeView) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if p.Profile.Allows("credits", "view") && touches(changes, "accounts") {
		if err := CreditBadge(v.c.chrome(nil, p, "").Credits).Render(ctx, w); err != nil {
			return err
		}
	}
	if v.body == nil {
		return nil
	}
	return v.body.fragments(ctx, p, changes, w)
}

// forbidden answers 403 with a page that says which right is missing.
func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, p *api.Principal, msg string) {
	render(w, r, http.StatusForbidden, Message(MessagePage{Building: c.building, Title: "Not allowed", Message: msg, Back: "/"}))
}

// missing answers 404 for a record the operator cannot see (or that is gone).
func (c *Console) missing(w http.ResponseWriter, r *http.Request, p *api.Principal, msg string) {
	render(w, r, http.StatusNotFound, Message(MessagePage{Building: c.building, Title: "Not found", Message: msg, Back: "/"}))
}
