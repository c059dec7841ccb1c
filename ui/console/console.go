// Package console serves the browser console: server-rendered templ pages and
// plain HTML forms, no JavaScript. It reads the local replica and writes
// through the same Service as the JSON API.
package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/a-h/templ"

	"lintel/ui/api"
)

// maxForm bounds a form body: the console's forms are a few short fields.
const maxForm = 64 << 10

//go:embed assets/console.css
var css []byte

// assetPath carries the sheet's hash so a new version is never served from cache.
var assetPath = "/assets/console.css?v=" + cssTag[:12]

var cssTag = func() string {
	sum := sha256.Sum256(css)
	return hex.EncodeToString(sum[:])
}()

// pageSecurity is sent with every console answer: no scripts at all, styles
// only from this node, forms only to this node, never inside a frame.
const pageSecurity = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Console is the console handler.
type Console struct {
	api      *api.API
	svc      api.Service
	building string
	nodeID   string
	loc      *time.Location // dates show in the node's local time, the building's clock
	now      func() time.Time
	mux      *http.ServeMux
}

// New returns the console handler.
func New(a *api.API, svc api.Service, building, nodeID string) http.Handler {
	c := &Console{api: a, svc: svc, building: building, nodeID: nodeID, loc: time.Local, now: time.Now, mux: http.NewServeMux()}
	c.routes()
	return c
}

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /login", c.loginForm)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.logout)
	m.HandleFunc("GET /{$}", c.authed(c.sites))
	m.HandleFunc("POST /sites", c.authed(c.addSite))
	m.HandleFunc("POST /sites/{id}/delete", c.authed(c.deleteSite))
	m.HandleFunc("GET /cluster", c.authed(c.cluster))
	m.HandleFunc("GET /assets/console.css", c.stylesheet)
	m.HandleFunc("/", c.notFound)
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageSecurity)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
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

// chrome fills the page header for an operator.
func (c *Console) chrome(p *api.Principal, active string) Chrome {
	return Chrome{
		Building: c.building, NodeID: c.nodeID, Email: p.Operator.Email, Account: p.Account.Name,
		CanCluster: p.Profile.Allows("cluster", "view"), Active: active,
	}
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

func (c *Console) stylesheet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+cssTag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(css))
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
