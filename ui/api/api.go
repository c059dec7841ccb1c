// Package api is the JSON API of SPEC section 4: handlers validate and
// authorize, build a command, and hand it to the Service, which commits it
// through the leader and waits until this node has applied it.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader"
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
	// Events lists this node's local access events.
	Events(f reader.EventFilter) ([]reader.Event, error)
	// Unlock opens a reader's door, on the node that runs it.
	Unlock(ctx context.Context, readerID, by string) (reader.Event, error)
	// KnowsNode tells whether id names a node of this cluster (in its Raft
	// configuration or seen by gossip, and not removed).
	KnowsNode(id string) bool
	// LoginThrottle applies a throttle operation (ThrottleAttempt,
	// ThrottleRefund, ThrottleReset) to the cluster's counts of failed logins, held by the
	// leader, and returns the wait; an error means the leader could not be
	// asked.
	LoginThrottle(ctx context.Context, op string, keys []string) (time.Duration, error)
	// HasQuorum tells whether this node can commit writes now.
	HasQuorum() bool
	// QueueOffline takes a revoke or lost mark on a node without a quorum:
	// enforced at its readers at once, committed when the quorum is back.
	QueueOffline(c command.Command) error
	// Snapshot makes this node write a Raft snapshot now and returns its index.
	Snapshot(ctx context.Context) (uint64, error)
	// History yields an account's history in commit order, the lines this
	// node archived included, until fn returns false.
	History(account string, fn func(state.HistoryEntry) bool) error
}

// Errors a Service returns that the API turns into 503.
var (
	ErrNoQuorum       = errors.New("no quorum")
	ErrUnknownOutcome = errors.New("unknown outcome")
	// ErrNodeUnreachable: the node that runs a reader cannot be reached.
	ErrNodeUnreachable = errors.New("node unreachable")
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
	svc     Service
	baseURL string // the node's advertised console URL, for activation links
	// CAPin, when set, gives the CA fingerprint an activation link carries
	// ("#ca=sha256:…") so the wallet can trust the node's certificate.
	CAPin    func() string
	nodeID   string // recorded in the account history
	log      *slog.Logger
	now      func() time.Time
	throttle *throttle
	// openLimit limits the requests that need no login, per address.
	openLimit *addrLimiter
	mux       *http.ServeMux
}

// New builds the API handler. baseURL is where people reach this node
// (http://advertised-address), used in activation links.
func New(svc Service, log *slog.Logger, baseURL, nodeID string) *API {
	a := &API{svc: svc, log: log, baseURL: baseURL, nodeID: nodeID, now: time.Now, throttle: newThrottle(), openLimit: newAddrLimiter(), mux: http.NewServeMux()}
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
	m.HandleFunc("POST /api/v1/cluster/snapshot", a.auth("cluster", "delete", a.snapshot))
	m.HandleFunc("GET /api/v1/cluster/join-token", a.auth("cluster", "view", a.getJoinToken))
	m.HandleFunc("POST /api/v1/cluster/join-token", a.auth("cluster", "edit", a.rotateJoinToken))

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
	m.HandleFunc("GET /api/v1/cards/{id}", a.auth("cards", "view", a.getCard(false)))
	m.HandleFunc("PATCH /api/v1/cards/{id}", a.auth("cards", "edit", a.updateCard))
	deleteCard := func(id, acc string) command.Body { return &command.DeleteCard{ID: id, AccountID: acc} }
	revokeCard := func(id, acc string) command.Body { return &command.RevokeCard{ID: id, AccountID: acc} }
	m.HandleFunc("DELETE /api/v1/cards/{id}", a.auth("cards", "delete", a.cardAction(false, deleteCard, http.StatusNoContent)))
	m.HandleFunc("POST /api/v1/cards/{id}/send", a.auth("cards", "edit", a.sendCard(false)))
	lostCard := func(id, acc string) command.Body { return &command.MarkLost{ID: id, AccountID: acc} }
	m.HandleFunc("POST /api/v1/cards/{id}/revoke", a.auth("cards", "edit", a.offlineFirst(false, revokeCard)))
	m.HandleFunc("POST /api/v1/cards/{id}/lost", a.auth("cards", "edit", a.offlineFirst(false, lostCard)))

	m.HandleFunc("PATCH /api/v1/cardholders/{id}", a.auth("cardholders", "edit", a.patchCardholder))
	m.HandleFunc("DELETE /api/v1/cardholders/{id}", a.auth("cardholders", "delete", a.deleteCardholder))

	m.HandleFunc("GET /api/v1/sites/{id}/configurators", a.auth("configurators", "view", a.listConfigurators))
	m.HandleFunc("POST /api/v1/sites/{id}/configurators", a.auth("configurators", "create", a.createConfigurator))
	m.HandleFunc("PATCH /api/v1/configurators/{id}", a.auth("configurators", "edit", a.patchConfigurator))
	m.HandleFunc("DELETE /api/v1/configurators/{id}", a.auth("configurators", "delete", a.deleteConfigurator))
	m.HandleFunc("GET /api/v1/configurators/{id}/config-cards", a.auth("configurators", "view", a.listConfigCards))
	m.HandleFunc("POST /api/v1/configurators/{id}/config-cards", a.auth("configurators", "create", a.createConfigCard))
	m.HandleFunc("GET /api/v1/config-cards/{id}", a.auth("configurators", "view", a.getCard(true)))
	m.HandleFunc("POST /api/v1/config-cards/{id}/send", a.auth("configurators", "edit", a.sendCard(true)))
	m.HandleFunc("POST /api/v1/config-cards/{id}/revoke", a.auth("configurators", "edit", a.offlineFirst(true, revokeCard)))
	m.HandleFunc("DELETE /api/v1/config-cards/{id}", a.auth("configurators", "delete", a.cardAction(true, deleteCard, http.StatusNoContent)))
	m.HandleFunc("GET /api/v1/sites/{id}/configurators/export.xlsx", a.auth("configurators", "view", a.configuratorSheet(false)))
	m.HandleFunc("GET /api/v1/sites/{id}/configurators/report.xlsx", a.auth("configurators", "view", a.configuratorSheet(true)))
	m.HandleFunc("GET /api/v1/sites/{id}/config-cards/export.xlsx", a.auth("configurators", "view", a.configCardSheet(false)))
	m.HandleFunc("GET /api/v1/sites/{id}/config-cards/report.xlsx", a.auth("configurators", "view", a.configCardSheet(true)))
	m.HandleFunc("GET /api/v1/sites/{id}/reader-configs/export.xlsx", a.auth("reader_configs", "view", a.exportReaderConfigs))
	m.HandleFunc("GET /api/v1/cardholders/export.xlsx", a.auth("cardholders", "view", a.exportCardholders))
	m.HandleFunc("GET /api/v1/readers", a.auth("readers", "view", a.listReaders))
	m.HandleFunc("GET /api/v1/events", a.auth("events", "view", a.listEvents))
	m.HandleFunc("POST /api/v1/readers", a.auth("readers", "create", a.createReader))
	m.HandleFunc("PATCH /api/v1/readers/{id}", a.auth("readers", "edit", a.patchReader))
	m.HandleFunc("DELETE /api/v1/readers/{id}", a.auth("readers", "delete", a.deleteReader))
	m.HandleFunc("POST /api/v1/readers/{id}/unlock", a.auth("readers", "edit", a.unlockReader))
	m.HandleFunc("POST /api/v1/readers/{id}/enroll", a.auth("readers", "edit", a.armEnrollment))
	m.HandleFunc("DELETE /api/v1/readers/{id}/enroll", a.auth("readers", "edit", a.disarmEnrollment))
	m.HandleFunc("GET /api/v1/schedules", a.auth("readers", "view", a.listSchedules))
	m.HandleFunc("POST /api/v1/schedules", a.auth("readers", "create", a.createSchedule))
	m.HandleFunc("GET /api/v1/access-levels", a.auth("readers", "view", a.listAccessLevels))
	m.HandleFunc("POST /api/v1/access-levels", a.auth("readers", "create", a.createAccessLevel))
	m.HandleFunc("GET /api/v1/templates", a.auth("account", "view", a.listTemplates))
	m.HandleFunc("PUT /api/v1/templates/{kind}", a.auth("account", "edit", a.putTemplate))

	m.HandleFunc("GET /api/v1/accounts", a.auth("accounts", "view", a.listAccounts))
	m.HandleFunc("POST /api/v1/accounts", a.auth("accounts", "create", a.createAccount))
	m.HandleFunc("GET /api/v1/accounts/{id}", a.auth("accounts", "view", a.getAccount))
	m.HandleFunc("PATCH /api/v1/accounts/{id}", a.auth("accounts", "edit", a.patchAccount))
	m.HandleFunc("DELETE /api/v1/accounts/{id}", a.auth("accounts", "delete", a.deleteAccount))
	m.HandleFunc("POST /api/v1/accounts/{id}/disable", a.auth("accounts", "edit", a.accountStatus(false)))
	m.HandleFunc("POST /api/v1/accounts/{id}/enable", a.auth("accounts", "edit", a.accountStatus(true)))
	m.HandleFunc("POST /api/v1/accounts/{id}/transfers", a.auth("credits", "edit", a.transfer))
	m.HandleFunc("GET /api/v1/transfers", a.auth("credits", "view", a.listTransfers))
	m.HandleFunc("GET /api/v1/history", a.auth("account", "view", a.listHistory))
	m.HandleFunc("GET /api/v1/self-check", a.auth("cluster", "view", a.selfCheck))

	m.HandleFunc("GET /api/v1/operators", a.auth("operators", "view", a.listOperators))
	m.HandleFunc("POST /api/v1/operators", a.auth("operators", "create", a.createOperator))
	m.HandleFunc("PATCH /api/v1/operators/{id}", a.auth("operators", "edit", a.operatorWrite(patchOperatorBody, http.StatusOK)))
	m.HandleFunc("DELETE /api/v1/operators/{id}", a.auth("operators", "delete", a.operatorWrite(
		func(id string, p *Principal, _ *http.Request) (command.Body, bool) {
			return &command.DeleteOperator{ID: id, AccountID: p.Account.ID}, true
		}, http.StatusNoContent)))
	m.HandleFunc("POST /api/v1/operators/{id}/disable", a.auth("operators", "edit", a.operatorWrite(
		func(id string, p *Principal, _ *http.Request) (command.Body, bool) {
			return &command.SetOperatorStatus{ID: id, AccountID: p.Account.ID}, true
		}, http.StatusOK)))
	m.HandleFunc("POST /api/v1/operators/{id}/enable", a.auth("operators", "edit", a.operatorWrite(
		func(id string, p *Principal, _ *http.Request) (command.Body, bool) {
			return &command.SetOperatorStatus{ID: id, AccountID: p.Account.ID, Enable: true}, true
		}, http.StatusOK)))
	m.HandleFunc("GET /api/v1/profiles", a.auth("profiles", "view", a.listProfiles))
	m.HandleFunc("POST /api/v1/profiles", a.auth("profiles", "create", a.profileWrite(false)))
	m.HandleFunc("PATCH /api/v1/profiles/{id}", a.auth("profiles", "edit", a.profileWrite(true)))
	m.HandleFunc("DELETE /api/v1/profiles/{id}", a.auth("profiles", "delete", a.deleteProfile))
	m.HandleFunc("GET /api/v1/tokens", a.auth("operators", "view", a.listTokens))
	m.HandleFunc("POST /api/v1/tokens", a.auth("", "", a.createToken))
	m.HandleFunc("DELETE /api/v1/tokens/{id}", a.auth("operators", "edit", a.deleteToken))
	m.HandleFunc("POST /invitation/{token}", a.open(a.acceptInvitation))

	// Exports and the card import (importexport.go).
	m.HandleFunc("GET /api/v1/sites/export.xlsx", a.auth("sites", "view", a.exportSites))
	m.HandleFunc("GET /api/v1/sites/{id}/cards/export.xlsx", a.auth("cards", "view", a.cardSheet(false)))
	m.HandleFunc("GET /api/v1/sites/{id}/cards/report.xlsx", a.auth("cards", "view", a.cardSheet(true)))
	m.HandleFunc("GET /api/v1/outbox/export.xlsx", a.auth("cards", "view", a.exportOutbox))
	m.HandleFunc("GET /api/v1/history/export.xlsx", a.auth("account", "view", a.exportHistory))
	m.HandleFunc("GET /api/v1/transfers/export.xlsx", a.auth("credits", "view", a.exportTransfers))
	m.HandleFunc("GET /api/v1/operators/export.xlsx", a.auth("operators", "view", a.exportOperators))
	m.HandleFunc("GET /api/v1/accounts/export.xlsx", a.auth("accounts", "view", a.exportAccounts))
	m.HandleFunc(routeImportCards, a.auth("cards", "create", a.importCards))

	m.HandleFunc("POST /activate/{token}", a.open(a.activate))
	m.HandleFunc("POST /wallet/v1/checkin", a.open(a.walletCheckin))
	m.HandleFunc("POST /wallet/v1/receipts", a.open(a.walletReceipt))

	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "", "there is no "+r.Method+" "+r.URL.Path+" in this API; see the README for the paths")
	})
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, a.bodyLimit(r))
	}
	a.mux.ServeHTTP(w, r)
}

// write builds the command header, commits the command and maps the outcome.
// It reports false when it has already answered with an error.
func (a *API) write(w http.ResponseWriter, r *http.Request, p *Principal, body command.Body) (json.RawMessage, bool) {
	return a.writeOr(w, r, p, body, nil)
}

// notAnswered marks a write that writeOr left for the caller to answer.
var notAnswered = json.RawMessage("null")

// writeOr is write, except that a service error for which keep returns
// true is not answered: it returns (notAnswered, false) and the caller
// answers.
func (a *API) writeOr(w http.ResponseWriter, r *http.Request, p *Principal, body command.Body, keep func(error) bool) (json.RawMessage, bool) {
	c := command.Command{Header: command.Header{RequestID: newID(), Actor: p.Operator.ID, At: a.now().UTC(), Node: a.nodeID}, Body: body}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 200 {
			writeError(w, http.StatusBadRequest, "invalid_header", "Idempotency-Key", "the Idempotency-Key header is longer than 200 characters")
			return nil, false
		}
		c.RequestID = idempotentRequestID(p.Operator.ID, key)
		c.Idempotent = true
	}
	rej := state.Admit(c)
	if rej == nil {
		rej = state.Validate(c)
	}
	if rej != nil {
		writeRejection(w, rej)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	defer cancel()
	res, err := a.svc.Write(ctx, c)
	if err != nil {
		if keep != nil && keep(err) {
			return notAnswered, false
		}
		a.writeServiceError(w, err)
		return nil, false
	}
	if res.Err != nil {
		writeRejection(w, res.Err)
		return nil, false
	}
	if res.Replayed != 0 && res.Value == nil && res.Sum != "" {
		// A retry of a write that applied, whose answer this node no longer
		// holds (it restarted or restored a snapshot since).
		writeError(w, http.StatusConflict, "already_applied", "",
			fmt.Sprintf("this request was applied at index %d, but its answer is no longer kept: reload to see the result", res.Replayed))
		return nil, false
	}
	return res.Value, true
}

func (a *API) writeServiceError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNoQuorum):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "no_quorum", "", "the cluster has no leader right now, so the write was not accepted; try again in a moment")
	case errors.Is(err, ErrNodeUnreachable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "node_unreachable", "", err.Error()+"; the door can be opened only by the node it is wired to")
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
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "", "the request body is over the 1 MiB limit")
		return false
	}
	if err == nil {
		err = checkJSON(body)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed_json", "", err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		switch {
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

// decodeQuiet reads a JSON body for handlers that answer errors themselves.
func decodeQuiet(r *http.Request, v any) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil || checkJSON(body) != nil {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v) == nil && !dec.More()
}

// readFresh runs look on the local replica; when it finds nothing there, the
// node catches up with the leader once and looks again. A write may name a
// record created moments ago through another node.
func (a *API) readFresh(look func(*state.State) bool) bool {
	var ok bool
	a.svc.Read(func(s *state.State) { ok = look(s) })
	if ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if a.svc.Strong(ctx) != nil {
		return false
	}
	a.svc.Read(func(s *state.State) { ok = look(s) })
	return ok
}
