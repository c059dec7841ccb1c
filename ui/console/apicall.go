package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"lintel/ui/api"
)

// formKey is the form's idem field, if it has a sane one.
func formKey(r *http.Request) string {
	var k string
	if r.MultipartForm != nil {
		if v := r.MultipartForm.Value["idem"]; len(v) > 0 {
			k = v[0]
		}
	} else if r.PostForm != nil {
		k = r.PostForm.Get("idem")
	}
	if len(k) < 16 || len(k) > 64 {
		return ""
	}
	return k
}

// newFormKey is the idem field of a form being drawn.
func newFormKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// callAPI runs one request of the JSON API for the operator of r, in
// process: the console's actions are the API's, with its checks, links,
// offline queue and idempotency, and no second implementation to drift.
// The outer request already passed the cross-origin check.
func (c *Console) callAPI(r *http.Request, method, path string, body io.Reader, contentType string) (int, []byte, *refusal) {
	req := httptest.NewRequestWithContext(r.Context(), method, path, body)
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	// The credential the console checked, whichever it was.
	if h := r.Header.Get("Authorization"); h != "" {
		req.Header.Set("Authorization", h)
	} else if ck, err := r.Cookie(api.SessionCookie); err == nil {
		req.AddCookie(ck)
	}
	// A form carries a key made when it was drawn (idem): the same form sent
	// twice (a double click, a reload) does its writes once. Each call of
	// the form gets its own key from it.
	if k := formKey(r); k != "" && method != http.MethodGet {
		sum := sha256.Sum256([]byte(k + "\x00" + method + "\x00" + path))
		req.Header.Set("Idempotency-Key", "console-"+hex.EncodeToString(sum[:16]))
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
