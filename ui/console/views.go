package console

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// viewFor builds the live view a page asked for in its /ws query.
func (c *Console) viewFor(v url.Values, p *api.Principal) (liveView, bool) {
	var body liveView
	switch v.Get("view") {
	case "":
	case "welcome":
		body = welcomeView{c}
	case "site":
		body = siteView{c, v.Get("site")}
	case "reader-configs":
		if !p.Profile.Allows("reader_configs", "view") {
			return nil, false
		}
		body = configsView{c, v.Get("site")}
	case "credits":
		if !p.Profile.Allows("credits", "view") {
			return nil, false
		}
		body = creditsLive{c}
	case "outbox":
		if !p.Profile.Allows("cards", "view") {
			return nil, false
		}
		body = outboxLive{c}
	case "cardholders", "visitors":
		if !p.Profile.Allows("cardholders", "view") {
			return nil, false
		}
		body = holdersLive{c, v.Get("view") == "visitors"}
	case "configurators":
		if !p.Profile.Allows("configurators", "view") {
			return nil, false
		}
		body = configuratorsLive{c, v.Get("site")}
	case "cards":
		if !p.Profile.Allows("cards", "view") {
			return nil, false
		}
		body = cardsView{c, parseCardQuery(v.Get("site"), v)}
	default:
		return nil, false
	}
	return chromeView{c, body}, true
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
