package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// ActivationView is the page a card holder sees on the phone when the
// activation link opens in a browser instead of the wallet app.
type ActivationView struct {
	Building  string
	Why       string // state.LinkUsable, LinkUsed, LinkExpired, LinkReplaced, LinkUnknown
	Site      string
	Holder    string
	Config    string
	Expires   time.Time
	Account   string
	NodeURL   string
	Expiring  bool // less than a day left
	Contact   string
	LinkShown string
}

// activation serves GET /activate/{token}: it tells the truth about the
// link (works until…, used, expired, replaced, unknown) and never uses it up.
func (c *Console) activation(w http.ResponseWriter, r *http.Request) {
	v := ActivationView{Building: c.building}
	c.svc.Read(func(s *state.State) {
		card, why := s.ActivationLink(api.HashToken(r.PathValue("token")))
		v.Why = why
		if why == state.LinkUnknown {
			return
		}
		v.Site, v.Holder, v.Config = s.Sites.At(card.SiteID).Name, card.FirstName+" "+card.LastName, card.ReaderConfig
		v.Account = s.Accounts.At(card.AccountID).Name
		if card.LinkExpires != nil {
			v.Expires = card.LinkExpires.In(c.loc)
			v.Expiring = card.LinkExpires.Sub(c.now()) < 24*time.Hour
		}
	})
	status := http.StatusOK
	switch v.Why {
	case state.LinkUnknown:
		status = http.StatusNotFound
	case state.LinkUsed, state.LinkExpired, state.LinkReplaced:
		status = http.StatusGone
	}
	w.Header().Set("Referrer-Policy", "no-referrer") // the link is a credential
	render(w, r, status, ActivationPage(v))
}

// InvitationView is the page an invited operator sets a password on.
type InvitationView struct {
	Building, Token, Email, Account string
	Valid                           bool
	Error                           string
	Done                            bool
}

func (c *Console) invitationView(token string) InvitationView {
	v := InvitationView{Building: c.building, Token: token}
	c.svc.Read(func(s *state.State) {
		inv, ok := s.Invitations.Get(api.HashToken(token))
		if !ok || !s.Clock.Before(inv.Expires) {
			return
		}
		o, ok := s.Operators.Get(inv.OperatorID)
		if !ok {
			return
		}
		v.Valid, v.Email, v.Account = true, o.Email, s.Accounts.At(o.AccountID).Name
	})
	return v
}

// invitation serves GET /invitation/{token}: the set-password form.
func (c *Console) invitation(w http.ResponseWriter, r *http.Request) {
	v := c.invitationView(r.PathValue("token"))
	status := http.StatusOK
	if !v.Valid {
		status = http.StatusGone
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	render(w, r, status, InvitationPage(v))
}

// acceptInvitation serves POST /invitation/{token}/password: the API's
// acceptance (with its per-address limit) with the typed password.
func (c *Console) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	v := c.invitationView(token)
	w.Header().Set("Referrer-Policy", "no-referrer")
	if err := r.ParseForm(); err != nil {
		v.Error = formError(err)
		render(w, r, http.StatusBadRequest, InvitationPage(v))
		return
	}
	pw, again := r.PostForm.Get("password"), r.PostForm.Get("password2")
	if pw != again {
		v.Error = "The two passwords are not the same; type them again."
		render(w, r, http.StatusBadRequest, InvitationPage(v))
		return
	}
	b, _ := json.Marshal(map[string]string{"password": pw})
	status, _, ref := c.callAPI(r, http.MethodPost, "/invitation/"+url.PathEscape(token), bytes.NewReader(b), "application/json")
	if ref != nil {
		v.Error = ref.message
		render(w, r, status, InvitationPage(v))
		return
	}
	v.Done = true
	render(w, r, http.StatusOK, InvitationPage(v))
}
