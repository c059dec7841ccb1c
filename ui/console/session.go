package console

import (
	"errors"
	"net/http"
	"strconv"

	"lintel/ui/api"
)

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.api.Authenticate(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	render(w, r, http.StatusOK, Login(LoginPage{Building: c.building, NodeID: c.nodeID}))
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	page := LoginPage{Building: c.building, NodeID: c.nodeID}
	if err := r.ParseForm(); err != nil {
		page.Error = formError(err)
		render(w, r, http.StatusBadRequest, Login(page))
		return
	}
	page.Email = r.PostForm.Get("email")
	// Login sets the session cookie itself, and only on success.
	_, lerr := c.api.Login(w, r, page.Email, r.PostForm.Get("password"))
	if lerr != nil {
		if lerr.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(lerr.RetryAfter))
		}
		page.Error = sentence(lerr.Message)
		render(w, r, lerr.Status, Login(page))
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	p, ok := c.api.Authenticate(r)
	if !ok {
		// Already over (expired or ended elsewhere): drop the stale cookie too.
		http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err := c.api.Logout(w, r, p); err != nil {
		// The session is still valid on the cluster: say so rather than
		// pretend the person is logged out.
		msg := "The session could not be ended: the cluster has no leader right now. Try again in a moment."
		if !errors.Is(err, api.ErrNoQuorum) {
			msg = "The session could not be ended (" + err.Error() + "). Try again in a moment."
		}
		w.Header().Set("Retry-After", "1")
		render(w, r, http.StatusServiceUnavailable, Message(MessagePage{Building: c.building, Title: "Not logged out", Message: msg, Back: "/"}))
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// formError words a form that could not be read.
func formError(err error) string {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return "The form is larger than this page accepts."
	}
	return "The form could not be read; reload the page and try again."
}
