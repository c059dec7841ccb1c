package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// HolderRow is one cardholder or visitor.
type HolderRow struct {
	ID, FirstName, LastName, Email, Phone string
	Visitor                               bool
	ValidFrom, ValidUntil                 *time.Time
	Cards                                 int
}

// HoldersPage lists the account's cardholders and visitors, with Add.
type HoldersPage struct {
	Rows                 []HolderRow
	Visitors             bool // the visitors' list
	CanCreate, CanDelete bool
	Error, Notice        string
	Form                 HolderRow // what was typed, kept after a refusal
	From, Until          string
}

func (c *Console) holdersPage(p *api.Principal, visitors bool) HoldersPage {
	v := HoldersPage{Visitors: visitors, CanCreate: p.Profile.Allows("cardholders", "create"), CanDelete: p.Profile.Allows("cardholders", "delete")}
	c.svc.Read(func(s *state.State) {
		cards := map[string]int{}
		for _, card := range s.Cards.All() {
			if card.AccountID == p.Account.ID && card.Kind != state.KindConfig {
				cards[card.CardholderID]++
			}
		}
		for _, h := range s.Cardholders.All() {
			if h.AccountID != p.Account.ID || h.Visitor != visitors {
				continue
			}
			row := HolderRow{ID: h.ID, FirstName: h.FirstName, LastName: h.LastName, Email: h.Email, Phone: h.Phone, Visitor: h.Visitor, Cards: cards[h.ID]}
			if h.ValidFrom != nil {
				t := h.ValidFrom.In(c.loc)
				row.ValidFrom = &t
			}
			if h.ValidUntil != nil {
				t := h.ValidUntil.In(c.loc)
				row.ValidUntil = &t
			}
			v.Rows = append(v.Rows, row)
		}
	})
	slices.SortFunc(v.Rows, func(a, b HolderRow) int {
		return strings.Compare(strings.ToLower(a.LastName+"\x00"+a.FirstName), strings.ToLower(b.LastName+"\x00"+b.FirstName))
	})
	return v
}

// holders serves GET /cardholders and GET /visitors.
func (c *Console) holders(visitors bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *api.Principal) {
		notice := map[string]string{"add": "Added.", "delete": "Deleted."}[r.URL.Query().Get("done")]
		c.showHolders(w, r, p, visitors, nil, notice, HolderRow{}, "", "")
	}
}

func (c *Console) showHolders(w http.ResponseWriter, r *http.Request, p *api.Principal, visitors bool, ref *refusal, notice string, form HolderRow, from, until string) {
	if !p.Profile.Allows("cardholders", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing cardholders; ask an administrator.")
		return
	}
	v := c.holdersPage(p, visitors)
	status := http.StatusOK
	if ref != nil {
		status, v.Error = ref.status, ref.message
	}
	v.Notice, v.Form, v.From, v.Until = notice, form, from, until
	active := "cardholders"
	if visitors {
		active = "visitors"
	}
	ch := c.chrome(r, p, active)
	ch.LiveURL = "/ws?view=" + active
	render(w, r, status, HoldersView(ch, v))
}

// holderPath is the list a holder belongs to.
func holderPath(visitor bool) string {
	if visitor {
		return "/visitors"
	}
	return "/cardholders"
}

// datetime-local's format, read in the node's time zone.
const localInput = "2006-01-02T15:04"

// addHolder serves POST /cardholders and POST /visitors.
func (c *Console) addHolder(visitors bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *api.Principal) {
		if err := r.ParseForm(); err != nil {
			c.showHolders(w, r, p, visitors, &refusal{http.StatusBadRequest, formError(err)}, "", HolderRow{}, "", "")
			return
		}
		f := r.PostForm
		form := HolderRow{FirstName: strings.TrimSpace(f.Get("first_name")), LastName: strings.TrimSpace(f.Get("last_name")),
			Email: strings.TrimSpace(f.Get("email")), Phone: strings.TrimSpace(f.Get("phone"))}
		body := map[string]any{"first_name": form.FirstName, "last_name": form.LastName, "email": form.Email, "phone": form.Phone, "visitor": visitors}
		from, until := strings.TrimSpace(f.Get("valid_from")), strings.TrimSpace(f.Get("valid_until"))
		for _, x := range []struct {
			field, value, label string
		}{{"valid_from", from, "Valid from"}, {"valid_until", until, "Valid until"}} {
			if x.value == "" {
				continue
			}
			t, err := time.ParseInLocation(localInput, x.value, c.loc)
			if err != nil {
				c.showHolders(w, r, p, visitors, &refusal{http.StatusBadRequest, x.label + " is not a date and time; pick one in the field."}, "", form, from, until)
				return
			}
			body[x.field] = t.UTC()
		}
		b, _ := json.Marshal(body)
		if _, _, ref := c.callAPI(r, http.MethodPost, "/api/v1/cardholders", bytes.NewReader(b), "application/json"); ref != nil {
			c.showHolders(w, r, p, visitors, ref, "", form, from, until)
			return
		}
		http.Redirect(w, r, holderPath(visitors)+"?done=add", http.StatusSeeOther)
	}
}

// deleteHolder serves POST /cardholders/{id}/delete: the API deletes their
// cards by the card rules.
func (c *Console) deleteHolder(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	id := r.PathValue("id")
	visitor := false
	c.svc.Read(func(s *state.State) {
		if h, ok := s.Cardholders.Get(id); ok && h.AccountID == p.Account.ID {
			visitor = h.Visitor
		}
	})
	if _, _, ref := c.callAPI(r, http.MethodDelete, "/api/v1/cardholders/"+url.PathEscape(id), nil, ""); ref != nil {
		c.showHolders(w, r, p, visitor, ref, "", HolderRow{}, "", "")
		return
	}
	http.Redirect(w, r, holderPath(visitor)+"?done=delete", http.StatusSeeOther)
}

type holdersLive struct {
	c        *Console
	visitors bool
}

func (v holdersLive) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "cardholders", "cards") {
		return nil
	}
	return HolderTable(v.c.holdersPage(p, v.visitors)).Render(ctx, w)
}

// validity says when a holder's cards work.
func validity(h HolderRow) string {
	switch {
	case h.ValidFrom != nil && h.ValidUntil != nil:
		return creationDate(*h.ValidFrom) + " – " + creationDate(*h.ValidUntil)
	case h.ValidFrom != nil:
		return "from " + creationDate(*h.ValidFrom)
	case h.ValidUntil != nil:
		return "until " + creationDate(*h.ValidUntil)
	}
	return "always"
}
