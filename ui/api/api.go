// Package api is the JSON API of SPEC section 4: handlers validate and
// authorize, build a command, and hand it to the Service, which commits it
// through the leader and waits until this node has applied it.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Service is what the API needs from the node.
type Service interface {
	// Write commits c through the leader and returns once this node applied it.
	Write(ctx context.Context, c command.Command) (state.Result, error)
	// Read runs fn on the local replica under a read lock.
	Read(fn func(*state.State))
	// Strong returns once the local replica reflects every write committed
	// before the call (a linearizable read follows).
	Strong(ctx context.Context) error
	// Cluster describes the nodes.
	Cluster(ctx context.Context) (ClusterView, error)
	// RemoveNode removes a node from Raft and gossip.
	RemoveNode(ctx context.Context, actor, id string) error
}

// Errors a Service returns that the API turns into 503.
var (
	ErrNoQuorum       = errors.New("no quorum")
	ErrUnknownOutcome = errors.New("unknown outcome")
)

// MaxBody bounds a JSON request body.
const MaxBody = 1 << 20

// WriteTimeout bounds how long a write waits for the leader and the commit.
const WriteTimeout = 5 * time.Second

// SessionTTL is how long a login lasts.
const SessionTTL = 12 * time.Hour

// SessionCookie is the name of the console and API session cookie.
const SessionCookie = "lintel_session"

// API serves /api/v1.
type API struct {
	svc      Service
	baseURL  string // the node's advertised console URL, for activation links
	log      *slog.Logger
	now      func() time.Time
	throttle *throttle
	mux      *http.ServeMux
}

// New builds the API handler. baseURL is where people reach this node
// (http://advertised-address), used in activation links.
func New(svc Service, log *slog.Logger, baseURL string) *API {
	a := &API{svc: svc, log: log, baseURL: baseURL, now: time.Now, throttle: newThrottle(), mux: http.NewServeMux()}
	a.routes()
	return a
}

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("POST /api/v1/session", a.login)
	m.HandleFunc("GET /api/v1/session", a.auth("", "", a.getSession))
	m.HandleFunc("DELETE /api/v1/session", a.auth("", "", a.logout))

	m.HandleFunc("GET /api/v1/cluster", a.auth("cluster", "view", a.getCluster))
	m.HandleFunc("DELETE /api/v1/cluster/nodes/{id}", a.auth("cluster", "delete", a.removeNode))

	m.HandleFunc("GET /api/v1/sites", a.auth("sites", "view", a.listSites))
	m.HandleFunc("POST /api/v1/sites", a.auth("sites", "create", a.createSite))
	m.HandleFunc("GET /api/v1/sites/{id}", a.auth("sites", "view", a.getSite))
	m.HandleFunc("DELETE /api/v1/sites/{id}", a.auth("sites", "delete", a.deleteSite))
	m.HandleFunc("PATCH /api/v1/sites/{id}", a.auth("sites", "edit", a.patchSite))

	m.HandleFunc("POST /api/v1/sites/{id}/reader-configs", a.auth("reader_configs", "create", a.importReaderConfig))
	m.HandleFunc("GET /api/v1/sites/{id}/reader-configs", a.auth("reader_configs", "view", a.listReaderConfigs))
	m.HandleFunc("GET /api/v1/reader-configs/{id}", a.auth("reader_configs", "view", a.getReaderConfig))
	m.HandleFunc("DELETE /api/v1/reader-configs/{id}", a.auth("reader_configs", "delete", a.deleteReaderConfig))

	m.HandleFunc("GET /api/v1/credits", a.auth("credits", "view", a.getCredits))
	m.HandleFunc("PATCH /api/v1/credits", a.auth("credits", "edit", a.patchCredits))
	m.HandleFunc("POST /api/v1/credits/vouchers", a.auth("credits", "create", a.loadVoucher))
	m.HandleFunc("GET /api/v1/credits/issuers", a.auth("credits", "view", a.listIssuers))
	m.HandleFunc("POST /api/v1/credits/issuers", a.auth("credits", "create", a.addIssuer))
	m.HandleFunc("GET /api/v1/outbox", a.auth("cards", "view", a.listOutbox))

	m.HandleFunc("GET /api/v1/cardholders", a.auth("cardholders", "view", a.listCardholders))
	m.HandleFunc("POST /api/v1/cardholders", a.auth("cardholders", "create", a.createCardholder))
	m.HandleFunc("GET /api/v1/cardholders/{id}", a.auth("cardholders", "view", a.getCardholder))

	m.HandleFunc("GET /api/v1/sites/{id}/cards", a.auth("cards", "view", a.listCards))
	m.HandleFunc("POST /api/v1/sites/{id}/cards", a.auth("cards", "create", a.createCard))
	m.HandleFunc("GET /api/v1/cards/{id}", a.auth("cards", "view", a.getCard))
	m.HandleFunc("PATCH /api/v1/cards/{id}", a.auth("cards", "edit", a.updateCard))
	m.HandleFunc("DELETE /api/v1/cards/{id}", a.auth("cards", "delete", a.cardAction(
		func(id, acc string) command.Body { return &command.DeleteCard{ID: id, AccountID: acc} }, http.StatusNoContent)))
	m.HandleFunc("POST /api/v1/cards/{id}/send", a.auth("cards", "edit", a.sendCard))
	m.HandleFunc("POST /api/v1/cards/{id}/revoke", a.auth("cards", "edit", a.cardAction(
		func(id, acc string) command.Body { return &command.RevokeCard{ID: id, AccountID: acc} }, http.StatusOK)))
	m.HandleFunc("POST /api/v1/cards/{id}/lost", a.auth("cards", "edit", a.cardAction(
		func(id, acc string) command.Body { return &command.MarkLost{ID: id, AccountID: acc} }, http.StatusOK)))

	m.HandleFunc("GET /activate/{token}", a.activationPage)
	m.HandleFunc("POST /activate/{token}", a.activate)
	m.HandleFunc("POST /wallet/v1/checkin", a.walletCheckin)
	m.HandleFunc("POST /wallet/v1/receipts", a.walletReceipt)

	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "", "there is no "+r.Method+" "+r.URL.Path+" in this API; see the README for the paths")
	})
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	}
	a.mux.ServeHTTP(w, r)
}

// write builds the command header, commits the command and maps the outcome.
// It reports false when it has already answered with an error.
func (a *API) write(w http.ResponseWriter, r *http.Request, p *Principal, body command.Body) (json.RawMessage, bool) {
	c := command.Command{Header: command.Header{RequestID: newID(), Actor: p.Operator.ID, At: a.now().UTC()}, Body: body}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 200 {
			writeError(w, http.StatusBadRequest, "invalid_header", "Idempotency-Key", "the Idempotency-Key header is longer than 200 characters")
			return nil, false
		}
		sum := sha256.Sum256([]byte(p.Operator.ID + "\n" + key))
		c.RequestID = "idem-" + hex.EncodeToString(sum[:16])
		c.Idempotent = true
	}
	if rej := state.Validate(c); rej != nil {
		writeRejection(w, rej)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	defer cancel()
	res, err := a.svc.Write(ctx, c)
	if err != nil {
		a.writeServiceError(w, err)
		return nil, false
	}
	if res.Err != nil {
		writeRejection(w, res.Err)
		return nil, false
	}
	return res.Value, true
}

func (a *API) writeServiceError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNoQuorum):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "no_quorum", "", "the cluster has no leader right now, so the write was not accepted; try again in a moment")
	case errors.Is(err, ErrUnknownOutcome):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unknown_outcome", "", "the leader changed while this write was in flight; send it again with the same Idempotency-Key to be sure it applies once")
	default:
		a.log.Error("write failed", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "", "the write could not be completed: "+err.Error())
	}
}

// strong makes a read linearizable when the client asks for it.
func (a *API) strong(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Query().Get("consistency") {
	case "", "local":
		return true
	case "strong":
	default:
		writeError(w, http.StatusBadRequest, "invalid_value", "consistency", "consistency must be strong or left out")
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	defer cancel()
	if err := a.svc.Strong(ctx); err != nil {
		w.Header().Set("Retry-After", "1")
		if errors.Is(err, ErrNoQuorum) {
			writeError(w, http.StatusServiceUnavailable, "no_quorum", "", "a strong read needs the leader, and the cluster has none right now; try again in a moment or read without consistency=strong")
		} else {
			writeError(w, http.StatusServiceUnavailable, "catching_up", "", "this node could not catch up with the leader in time for a strong read; try again in a moment")
		}
		return false
	}
	return true
}

// decode reads a JSON body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "", "the request body is over the 1 MiB limit")
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "malformed_json", "", "the request body is empty; send a JSON object")
		default:
			writeError(w, http.StatusBadRequest, "malformed_json", "", "the request body is not the JSON this endpoint takes: "+err.Error())
		}
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "malformed_json", "", "the request body has data after the JSON object")
		return false
	}
	return true
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a random id: 80 bits, 16 lower-case characters.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// NewID is the id maker shared with the node (bootstrap records).
func NewID() string { return newID() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, field, msg string) {
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: msg, Field: field}})
}

// statusOf is the one table from rejection kinds to HTTP statuses.
var statusOf = map[state.Kind]int{
	state.Invalid:   http.StatusBadRequest,
	state.NotFound:  http.StatusNotFound,
	state.Conflict:  http.StatusConflict,
	state.Forbidden: http.StatusForbidden,
}

// StatusOf is the HTTP status of a rejection; the console uses it too.
func StatusOf(r *state.Rejection) int {
	if st, ok := statusOf[r.Kind]; ok {
		return st
	}
	return http.StatusBadRequest
}

func writeRejection(w http.ResponseWriter, r *state.Rejection) {
	writeError(w, StatusOf(r), r.Code, r.Field, r.Message)
}

func trimmed(s string) string { return strings.TrimSpace(s) }
