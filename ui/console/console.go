// Package console serves the browser console: server-rendered templ pages and
// plain HTML forms, no JavaScript. It reads the local replica and writes
// through the same Service as the JSON API.
package console

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// maxForm bounds a form body: the console's forms are a few short fields;
// the upload forms take their file's own limit (bodyLimit).
const maxForm = 64 << 10

// maxImport bounds a card import upload, as the API's import does.
const maxImport = 64 << 20

func bodyLimit(r *http.Request) int64 {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/cards/import"):
		return maxImport
	case strings.HasSuffix(p, "/reader-configs"), p == "/credits/vouchers":
		return 256 << 10
	}
	return maxForm
}

// pageSecurity is sent with every console answer: scripts and styles only
// from this node's files (no inline script), the live socket only to this
// node, forms only to this node, never inside a frame.
const pageSecurity = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Console is the console handler.
type Console struct {
	api      *api.API
	svc      api.Service
	building string
	nodeID   string
	loc      *time.Location // dates show in the node's local time, the building's clock
	now      func() time.Time
	mux      *http.ServeMux
	hub      *Hub
	lists    listCache
}

// New returns the console handler.
// hub carries the state's changes to the live pages; nil makes one that
// nothing publishes to.
func New(a *api.API, svc api.Service, building, nodeID string, hub *Hub) http.Handler {
	if hub == nil {
		hub = NewHub()
	}
	c := &Console{api: a, svc: svc, building: building, nodeID: nodeID, loc: time.Local, now: time.Now, mux: http.NewServeMux(), hub: hub}
	hub.lists.Store(&c.lists)
	c.routes()
	return c
}

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /login", c.loginForm)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.logout)
	m.HandleFunc("GET /{$}", c.authed(c.dashboard))
	m.HandleFunc("GET /sites", c.authed(c.sites))
	m.HandleFunc("GET /sites/{id}", c.authed(c.site))
	m.HandleFunc("POST /sites", c.authed(c.addSite))
	m.HandleFunc("POST /sites/{id}/delete", c.authed(c.deleteSite))
	m.HandleFunc("GET /cluster", c.authed(c.cluster))
	m.HandleFunc("GET /sites/{id}/reader-configs", c.authed(c.readerConfigs))
	m.HandleFunc("POST /sites/{id}/reader-configs", c.authed(c.importReaderConfig))
	m.HandleFunc("GET /reader-configs/{id}", c.authed(c.readerConfig))
	m.HandleFunc("POST /reader-configs/{id}/delete", c.authed(c.deleteReaderConfig))
	m.HandleFunc("GET /sites/{id}/cards", c.authed(c.cards))
	m.HandleFunc("GET /sites/{id}/cards/new", c.authed(c.newCard))
	m.HandleFunc("POST /sites/{id}/cards", c.authed(c.createCard))
	m.HandleFunc("GET /sites/{id}/cards/import", c.authed(c.importForm))
	m.HandleFunc("POST /sites/{id}/cards/import", c.authed(c.importCards))
	m.HandleFunc("GET /cards/{id}/edit", c.authed(c.editCard))
	m.HandleFunc("POST /cards/{id}/edit", c.authed(c.updateCard))
	m.HandleFunc("POST /sites/{id}/cards/action", c.authed(c.cardAction))
	m.HandleFunc("GET /sites/{id}/configurators", c.authed(c.configurators))
	m.HandleFunc("POST /sites/{id}/configurators", c.authed(c.configuratorPost))
	m.HandleFunc("POST /sites/{id}/configurators/do", c.authed(c.configuratorPost))
	m.HandleFunc("GET /cardholders", c.authed(c.holders(false)))
	m.HandleFunc("GET /visitors", c.authed(c.holders(true)))
	m.HandleFunc("POST /cardholders", c.authed(c.addHolder(false)))
	m.HandleFunc("POST /visitors", c.authed(c.addHolder(true)))
	m.HandleFunc("POST /cardholders/{id}/delete", c.authed(c.deleteHolder))
	m.HandleFunc("GET /private-id-settings", c.authed(c.privateIDSettings))
	m.HandleFunc("POST /private-id-settings/{id}", c.authed(c.setDuplicates))
	m.HandleFunc("GET /history", c.authed(c.history))
	m.HandleFunc("GET /credits", c.authed(c.credits))
	m.HandleFunc("POST /credits/vouchers", c.authed(c.loadVoucher))
	m.HandleFunc("POST /credits/threshold", c.authed(c.setThreshold))
	m.HandleFunc("GET /outbox", c.authed(c.outbox))
	m.HandleFunc("GET /outbox/{id}/qr.png", c.authed(c.outboxQR))
	m.HandleFunc("GET /ws", c.live)
	m.HandleFunc("GET /activate/{token}", c.activation)
	m.HandleFunc("GET /invitation/{token}", c.invitation)
	m.HandleFunc("POST /invitation/{token}/password", c.acceptInvitation)
	m.HandleFunc("GET /assets/{name...}", c.asset)
	m.HandleFunc("/", c.notFound)
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageSecurity)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit(r))
	}
	c.mux.ServeHTTP(w, r)
}

type authedHandler func(w http.ResponseWriter, r *http.Request, p *api.Principal)

// authed sends a person without a session to the login page.
func (c *Console) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.api.Authenticate(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		h(w, r, p)
	}
}

// htmxConfig keeps htmx inside the page's Content-Security-Policy: no
// inline style of its own, no eval, no scripts out of swapped fragments.
// A refusal (4xx, 5xx) is a page that says why: it is swapped in too.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"wsReconnectDelay":"full-jitter",` +
	`"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}]}`

// chrome fills the page header for an operator; r (nil for a live
// fragment) gives the last site viewed, for the menu's site pages.
func (c *Console) chrome(r *http.Request, p *api.Principal, active string) Chrome {
	ch := Chrome{
		Building: c.building, NodeID: c.nodeID, Email: p.Operator.Email, Account: p.Account.Name,
		CanCluster: p.Profile.Allows("cluster", "view"), Active: active,
		CanCredits: p.Profile.Allows("credits", "view"), CanOutbox: p.Profile.Allows("cards", "view"), LiveURL: "/ws",
	}
	c.svc.Read(func(s *state.State) {
		l := s.Accounts.At(p.Account.ID).Credits
		ch.Credits = Credits{Available: l.Available(), Alert: l.Alert()}
		if r != nil {
			ch.SiteID = c.currentSite(r, p, s)
		}
	})
	return ch
}

// render renders into a buffer first, so a failed render becomes a clean 500
// instead of half a page.
func render(w http.ResponseWriter, r *http.Request, status int, comp templ.Component) {
	var buf bytes.Buffer
	if err := comp.Render(r.Context(), &buf); err != nil {
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages hold account data: keep them out of shared and back-button caches.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	render(w, r, http.StatusNotFound, Message(MessagePage{
		Building: c.building, Title: "Page not found",
		Message: "There is no page at " + r.URL.Path + ".", Back: "/",
	}))
}

// writeContext bounds a console write the same way the API bounds its own.
func writeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), api.WriteTimeout)
}
