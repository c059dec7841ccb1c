package console

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// cardPageSize is the rows of one page of the card list.
const cardPageSize = 50

// cardStatusWords are SPEC 4's console words, in the order the status sort
// and the filter use.
var cardStatusWords = []struct{ Status, Word string }{
	{state.CardCreated, "Created"},
	{state.CardSent, "Created and Email Sent"},
	{state.CardActivated, "Activated"},
	{state.CardPendingRevoke, "Pending Revoke"},
	{state.CardRevoked, "Revoked"},
	{state.CardLost, "Lost"},
	{state.CardExpired, "Expired"},
}

// statusWord is the console's word for a card status.
func statusWord(s string) string {
	for _, w := range cardStatusWords {
		if w.Status == s {
			return w.Word
		}
	}
	return s
}

// cardSorts are the columns a list sorts by; name is the index order.
var cardSorts = map[string]bool{"name": true, "config": true, "private_id": true, "email": true, "status": true}

// cardQuery is what a card list page shows: its URL and its live view.
type cardQuery struct {
	Site   string
	Q      string
	Status string
	Sort   string
	Desc   bool
	Page   int
}

func parseCardQuery(site string, v url.Values) cardQuery {
	q := cardQuery{Site: site, Q: strings.TrimSpace(v.Get("q")), Sort: v.Get("sort"), Desc: v.Get("dir") == "desc", Page: 1}
	if len(q.Q) > 200 {
		q.Q = q.Q[:200]
	}
	if _, ok := cardSorts[q.Sort]; !ok {
		q.Sort = "name"
	}
	for _, w := range cardStatusWords {
		if v.Get("status") == w.Status {
			q.Status = w.Status
		}
	}
	if n, err := strconv.Atoi(v.Get("page")); err == nil && n > 1 && n < 1<<20 {
		q.Page = n
	}
	return q
}

// values are the query's URL parameters; the defaults are left out.
func (q cardQuery) values() url.Values {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Sort != "name" {
		v.Set("sort", q.Sort)
	}
	if q.Desc {
		v.Set("dir", "desc")
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return v
}

// url is the list page for the query.
func (q cardQuery) url() string {
	u := "/sites/" + url.PathEscape(q.Site) + "/cards"
	if v := q.values(); len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

// with returns the query changed by fn (for the links of sorts and pages).
func (q cardQuery) with(fn func(*cardQuery)) cardQuery {
	fn(&q)
	return q
}

// sortURL is the link of a column header: the same column again flips the order.
func (q cardQuery) sortURL(col string) string {
	return q.with(func(n *cardQuery) {
		n.Desc = n.Sort == col && !n.Desc
		n.Sort, n.Page = col, 1
	}).url()
}

// liveURL is the page's websocket address: the same query, so the live view
// renders the same rows.
func (q cardQuery) liveURL() string {
	v := q.values()
	v.Set("view", "cards")
	v.Set("site", q.Site)
	return "/ws?" + v.Encode()
}

// CardRow is one line of the virtual user card list (seed 003, figures 57-64).
type CardRow struct {
	ID, FirstName, LastName, Config, PrivateID, Email, Status string
}

// Word is the status in the seed's words.
func (r CardRow) Word() string { return statusWord(r.Status) }

// CardList is one page of a site's cards.
type CardList struct {
	Query      cardQuery
	SiteName   string
	Rows       []CardRow
	Total      int // cards matching the filter
	Pages      int
	All        int // cards of the site
	Counts     map[string]int
	CanEdit    bool // Send, Revoke, Mark lost
	CanDelete  bool
	CanCreate  bool
	Notice     string
	Error      string
	ErrorCards map[string]string // card id → why the action was refused
}

// cardList reads one page of the list from the read model (listcache.go);
// false when the site is not the operator's.
func (c *Console) cardList(p *api.Principal, q cardQuery) (CardList, bool) {
	l := CardList{Query: q,
		CanEdit: p.Profile.Allows("cards", "edit"), CanDelete: p.Profile.Allows("cards", "delete"), CanCreate: p.Profile.Allows("cards", "create")}
	var list *siteList
	c.svc.Read(func(s *state.State) {
		site, ok := siteOf(s, p, q.Site)
		if !ok {
			return
		}
		l.SiteName = site.Name
		list, l.Counts = c.lists.list(s, site.ID)
	})
	if list == nil {
		return l, false
	}
	rows := c.lists.order(list, q.Sort)
	l.All = len(rows)
	needle := strings.ToLower(q.Q)
	from := (q.Page - 1) * cardPageSize
	for i := range rows {
		r := rows[i]
		if q.Desc {
			r = rows[len(rows)-1-i]
		}
		if (q.Status != "" && r.Status != q.Status) || (needle != "" && !strings.Contains(r.search, needle)) {
			continue
		}
		if l.Total >= from && len(l.Rows) < cardPageSize {
			l.Rows = append(l.Rows, r.CardRow)
		}
		l.Total++
	}
	l.Pages = max(1, (l.Total+cardPageSize-1)/cardPageSize)
	return l, true
}

func rowOf(c state.Card) CardRow {
	return CardRow{ID: c.ID, FirstName: c.FirstName, LastName: c.LastName, Config: c.ReaderConfig, PrivateID: c.PrivateID, Email: c.Email, Status: c.Status}
}

// cards serves GET /sites/{id}/cards.
func (c *Console) cards(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	v := r.URL.Query()
	notice := ""
	if done := noticeWord(v.Get("done")); done != "" {
		if n, err := strconv.Atoi(v.Get("n")); err == nil && n > 0 {
			notice = fmt.Sprintf("%s: %d %s.", done, n, plural(n, "card", "cards"))
		}
	}
	c.showCards(w, r, p, parseCardQuery(r.PathValue("id"), v), nil, notice, nil)
}

func (c *Console) showCards(w http.ResponseWriter, r *http.Request, p *api.Principal, q cardQuery, ref *refusal, notice string, perCard map[string]string) {
	if !p.Profile.Allows("cards", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing virtual access cards; ask an administrator.")
		return
	}
	l, ok := c.cardList(p, q)
	if !ok {
		c.missing(w, r, p, "There is no such customer site in your account.")
		return
	}
	status := http.StatusOK
	if ref != nil {
		status, l.Error = ref.status, ref.message
	}
	l.Notice, l.ErrorCards = notice, perCard
	render(w, r, status, CardsPage(c.chrome(r, p, "cards"), l))
}

// cardAction serves POST /sites/{id}/cards/action: the selected cards and
// one of Send, Revoke, Mark lost, Delete. Each card goes through the API;
// the page then says what was done and, per card, what was refused.
func (c *Console) cardAction(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	site := r.PathValue("id")
	if err := r.ParseForm(); err != nil {
		c.showCards(w, r, p, parseCardQuery(site, nil), &refusal{http.StatusBadRequest, formError(err)}, "", nil)
		return
	}
	q := parseCardQuery(site, r.PostForm)
	ids := r.PostForm["card"]
	action := r.PostForm.Get("action")
	if row := r.PostForm.Get("row"); row != "" { // a row's own button: that card only
		var id string
		action, id, _ = strings.Cut(row, " ")
		ids = []string{id}
	}
	verb, ok := cardVerbs[action]
	if !ok {
		c.showCards(w, r, p, q, &refusal{http.StatusBadRequest, "Choose Send, Revoke, Mark lost or Delete."}, "", nil)
		return
	}
	if len(ids) == 0 {
		c.showCards(w, r, p, q, &refusal{http.StatusBadRequest, "Select at least one card first, with the boxes at the start of the rows."}, "", nil)
		return
	}
	if len(ids) > 200 {
		c.showCards(w, r, p, q, &refusal{http.StatusBadRequest, "Select at most 200 cards at a time."}, "", nil)
		return
	}
	refused := map[string]string{}
	done := 0
	var last *refusal
	for _, id := range ids {
		_, _, ref := c.callAPI(r, verb.method, "/api/v1/cards/"+url.PathEscape(id)+verb.path, nil, "")
		if ref != nil {
			refused[id], last = ref.message, ref
			continue
		}
		done++
	}
	notice := ""
	if done > 0 {
		notice = fmt.Sprintf("%s: %d %s.", verb.done, done, plural(done, "card", "cards"))
	}
	if len(refused) > 0 {
		msg := fmt.Sprintf("%d of %d %s refused; the reason is shown on each row.", len(refused), len(ids), plural(len(ids), "card was", "cards were"))
		if len(refused) == 1 {
			msg = last.message
		}
		c.showCards(w, r, p, q, &refusal{last.status, msg}, notice, refused)
		return
	}
	v := q.values()
	v.Set("done", action)
	v.Set("n", strconv.Itoa(done))
	http.Redirect(w, r, "/sites/"+url.PathEscape(q.Site)+"/cards?"+v.Encode(), http.StatusSeeOther)
}

var cardVerbs = map[string]struct{ method, path, done string }{
	"send":   {http.MethodPost, "/send", "Sent"},
	"revoke": {http.MethodPost, "/revoke", "Revoke requested"},
	"lost":   {http.MethodPost, "/lost", "Marked lost"},
	"delete": {http.MethodDelete, "", "Deleted"},
}

// noticeWord is the word of the line after a write, by the done= of the
// redirect: an action's own, or Created and Saved for the forms.
func noticeWord(done string) string {
	if v, ok := cardVerbs[done]; ok {
		return v.done
	}
	return map[string]string{"create": "Created", "edit": "Saved"}[done]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cardsView is the card list's live part: the rows, counters and pager.
type cardsView struct {
	c *Console
	q cardQuery
}

func (v cardsView) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "cards", "sites") {
		return nil
	}
	l, ok := v.c.cardList(p, v.q)
	if !ok {
		return nil
	}
	return CardsLive(l).Render(ctx, w)
}

// withSite sets the header's site and live address for a site's page.
func withSite(ch Chrome, site, live string) Chrome {
	ch.SiteID, ch.LiveURL = site, live
	return ch
}

// sheetURL is the API's spreadsheet of the list, with the same search.
func sheetURL(q cardQuery, name string) string {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	u := "/api/v1/sites/" + url.PathEscape(q.Site) + "/cards/" + name
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

// rowAction is a button of one row.
type rowAction struct{ Action, Label, Class string }

// rowActions are the actions the card's status allows (SPEC 4.4), and only
// those the operator's profile allows.
func rowActions(l CardList, status string) []rowAction {
	return statusActions(status, l.CanEdit, l.CanDelete, true)
}

// statusActions are the buttons of a card in a status; lost is offered for
// user cards only (a configuration card is free: it is deleted instead).
func statusActions(status string, canEdit, canDelete, lost bool) []rowAction {
	var out []rowAction
	if canEdit {
		switch status {
		case state.CardCreated, state.CardExpired, state.CardRevoked:
			out = append(out, rowAction{"send", "Send", ""})
		case state.CardSent:
			out = append(out, rowAction{"send", "Resend", "secondary"})
		case state.CardActivated:
			out = append(out, rowAction{"revoke", "Revoke", "secondary"})
		}
		if lost && (status == state.CardRevoked || status == state.CardPendingRevoke) {
			out = append(out, rowAction{"lost", "Mark lost", "secondary"})
		}
	}
	if canDelete {
		out = append(out, rowAction{"delete", "Delete", "danger"})
	}
	return out
}
