package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"lintel/ui/api"
)

// callAPI runs one request of the JSON API for the operator of r, in
// process: the console's actions are the API's, with its checks, links,
// offline queue and idempotency, and no second implementation to drift.
// The outer request already passed the cross-origin check.
func (c *Console) callAPI(r *http.Request, method, path string, body io.Reader, contentType string) (int, []byte, *refusal) {
	req := httptest.NewRequestWithContext(r.Context(), method, path, body)
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	if ck, err := r.Cookie(api.SessionCookie); err == nil {
		req.AddCookie(ck)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	c.api.ServeHTTP(rec, req)
	out := rec.Body.Bytes()
	if rec.Code < 300 {
		return rec.Code, out, nil
	}
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	msg := "The change could not be made (status " + http.StatusText(rec.Code) + ")."
	if json.Unmarshal(out, &e) == nil && e.Error.Message != "" {
		msg = sentence(e.Error.Message)
	}
	if rec.Code == http.StatusServiceUnavailable && strings.Contains(e.Error.Code, "quorum") {
		msg = "The cluster has no leader right now, so nothing was changed. Try again in a moment."
	}
	return rec.Code, out, &refusal{rec.Code, msg}
}
