package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Principal is who a request acts for.
type Principal struct {
	Operator  state.Operator
	Account   state.Account
	Profile   state.Profile
	TokenHash string
}

func (p *Principal) can(area, right string) bool { return p.Profile.Allows(area, right) }

// CanSite reports whether an operator limited to some sites may touch this one.
func (p *Principal) CanSite(siteID string) bool {
	if len(p.Operator.SiteIDs) == 0 {
		return true
	}
	for _, id := range p.Operator.SiteIDs {
		if id == siteID {
			return true
		}
	}
	return false
}

type authedHandler func(w http.ResponseWriter, r *http.Request, p *Principal)

// HashToken is how session and API tokens are kept: a SHA-256 of a 256-bit
// random token (a slow hash adds nothing at that entropy, and every request pays it).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// Authenticate resolves a request's session; the console uses it too.
func (a *API) Authenticate(r *http.Request) (*Principal, bool) {
	tok := tokenOf(r)
	if tok == "" {
		return nil, false
	}
	return a.PrincipalOf(HashToken(tok))
}

// PrincipalOf finds the operator behind a session or API token hash, as
// Authenticate does; the console's live connections check it again on every
// change, so a logout or a lost right ends what they show.
func (a *API) PrincipalOf(hash string) (*Principal, bool) {
	var p *Principal
	a.svc.Read(func(s *state.State) {
		opID := ""
		if sess, ok := s.SessionByTokenHash(hash, a.now()); ok {
			opID = sess.OperatorID
		} else if t, ok := s.TokenByHash(hash); ok {
			opID = t.OperatorID
		} else {
			return
		}
		o, ok := s.Operators.Get(opID)
		if !ok || o.Status != state.OperatorActivated {
			return
		}
		acc, ok := s.Accounts.Get(o.AccountID)
		if !ok || acc.Status == state.OperatorDisabled {
			return
		}
		p = &Principal{Operator: o, Account: acc, Profile: s.Profiles.At(o.ProfileID), TokenHash: hash}
	})
	return p, p != nil
}

// auth checks the session and, when area is set, the profile's right on it.
func (a *API) auth(area, right string, h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.Authenticate(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "", "log in first: POST /api/v1/session with your email and password")
			return
		}
		if area != "" && !p.can(area, right) {
			writeError(w, http.StatusForbidden, "forbidden", "", "your profile does not allow "+right+" on "+area+"; ask an administrator")
			return
		}
		h(w, r, p)
	}
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type sessionView struct {
	Operator operatorView `json:"operator"`
	Account  accountRef   `json:"account"`
}

type operatorView struct {
	ID        string   `json:"id"`
	FirstName string   `json:"first_name"`
	LastName  string   `json:"last_name"`
	Email     string   `json:"email"`
	Phone     string   `json:"phone"`
	ProfileID string   `json:"profile_id"`
	Profile   string   `json:"profile"`
	SiteIDs   []string `json:"site_ids"`
	Status    string   `json:"status"`
}

type accountRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

func viewSession(p *Principal) sessionView {
	o := p.Operator
	ids := o.SiteIDs
	if ids == nil {
		ids = []string{}
	}
	return sessionView{
		Operator: operatorView{ID: o.ID, FirstName: o.FirstName, LastName: o.LastName, Email: o.Email, Phone: o.Phone,
			ProfileID: o.ProfileID, Profile: p.Profile.Name, SiteIDs: ids, Status: o.Status},
		Account: accountRef{ID: p.Account.ID, Name: p.Account.Name, Kind: p.Account.Kind},
	}
}

// dummyHash keeps a login for an unknown email as slow as one for a known email.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("lintel-no-such-operator"), bcrypt.DefaultCost)

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decode(w, r, &req) {
		return
	}
	p, lerr := a.Login(w, r, req.Email, req.Password)
	if lerr != nil {
		if lerr.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(lerr.RetryAfter))
		}
		writeError(w, lerr.Status, lerr.Code, lerr.Field, lerr.Message)
		return
	}
	writeJSON(w, http.StatusOK, viewSession(p))
}

// LoginError is why a login failed, in the API's words.
type LoginError struct {
	Status     int
	Code       string
	Field      string
	Message    string
	RetryAfter int // seconds, for 429 and 503
}

func (e *LoginError) Error() string { return e.Message }

// Login checks the password, commits a new session and sets its cookie on w.
// The API and the console's login form share it.
func (a *API) Login(w http.ResponseWriter, r *http.Request, email, password string) (*Principal, *LoginError) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || password == "" {
		return nil, &LoginError{Status: http.StatusBadRequest, Code: "required", Field: "email", Message: "email and password are both required"}
	}
	if len(email) > 254 {
		return nil, &LoginError{Status: http.StatusBadRequest, Code: "invalid_value", Field: "email", Message: "an email address is at most 254 characters"}
	}
	if !a.openLimit.allow(limitKey(clientIP(r)), a.now()) {
		return nil, &LoginError{Status: http.StatusTooManyRequests, Code: "too_many_requests", RetryAfter: 1,
			Message: "too many requests from this address; wait a second and try again"}
	}
	keys := loginKeys(email, limitKey(clientIP(r)))
	// Counted before the password is checked, so guesses sent in parallel
	// count too; a login that succeeds takes its count back. A client that
	// hangs up does not cancel the count.
	ctx := context.WithoutCancel(r.Context())
	if wait := a.loginThrottle(ctx, ThrottleAttempt, keys); wait > 0 {
		return nil, &LoginError{Status: http.StatusTooManyRequests, Code: "too_many_attempts", RetryAfter: int(wait.Seconds() + 0.999),
			Message: "too many failed logins; wait a minute before trying again"}
	}
	// Only a wrong password keeps its count: a node that cannot check, or a
	// right password refused for the account's status, was not a guess.
	guessed := false
	defer func() {
		if !guessed {
			a.loginThrottle(ctx, ThrottleRefund, keys)
		}
	}()
	var op state.Operator
	var found, initialized bool
	lookup := func() {
		a.svc.Read(func(s *state.State) {
			op, found = s.OperatorByEmail(email)
			initialized = s.Initialized
		})
	}
	lookup()
	if !found {
		// The operator may exist on the leader and not here yet (a new node,
		// a restart replaying its log): catch up once before saying no.
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := a.svc.Strong(ctx)
		cancel()
		if err == nil {
			lookup()
		}
		if err != nil || !initialized {
			return nil, &LoginError{Status: http.StatusServiceUnavailable, Code: "not_ready", RetryAfter: 1,
				Message: "this node cannot reach the cluster's leader to check your login; try again in a moment or use another node"}
		}
	}
	hash := dummyHash
	if found {
		hash = []byte(op.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !found {
		guessed = true
		return nil, &LoginError{Status: http.StatusUnauthorized, Code: "bad_credentials", Message: "the email or the password is wrong"}
	}
	var accStatus string
	a.svc.Read(func(s *state.State) { accStatus = s.Accounts.At(op.AccountID).Status })
	if accStatus == state.OperatorDisabled {
		return nil, &LoginError{Status: http.StatusForbidden, Code: "account_disabled", Message: "this account is disabled; ask your reseller"}
	}
	if op.Status != state.OperatorActivated {
		return nil, &LoginError{Status: http.StatusForbidden, Code: "operator_not_active", Message: "this operator is " + op.Status + "; ask an administrator"}
	}
	a.loginThrottle(ctx, ThrottleReset, keys[:1]) // the person's own mistakes (the refund is deferred)
	token := newToken()
	now := a.now().UTC()
	c := command.Command{
		Header: command.Header{RequestID: newID(), Actor: op.ID, At: now},
		Body:   &command.CreateSession{SessionID: newID(), TokenHash: HashToken(token), OperatorID: op.ID, ExpiresAt: now.Add(SessionTTL)},
	}
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	defer cancel()
	res, err := a.svc.Write(ctx, c)
	if err != nil {
		return nil, &LoginError{Status: http.StatusServiceUnavailable, Code: "no_quorum", RetryAfter: 1,
			Message: "the cluster has no leader right now, so no session could be started; try again in a moment"}
	}
	if res.Err != nil {
		return nil, &LoginError{Status: StatusOf(res.Err), Code: res.Err.Code, Message: res.Err.Message}
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil, Expires: now.Add(SessionTTL),
	})
	p := &Principal{Operator: op, TokenHash: HashToken(token)}
	a.svc.Read(func(s *state.State) {
		p.Account = s.Accounts.At(op.AccountID)
		p.Profile = s.Profiles.At(op.ProfileID)
	})
	return p, nil
}

// Logout ends the request's session and clears its cookie.
func (a *API) Logout(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	defer cancel()
	c := command.Command{Header: command.Header{RequestID: newID(), Actor: p.Operator.ID, At: a.now().UTC()},
		Body: &command.DeleteSession{TokenHash: p.TokenHash}}
	if _, err := a.svc.Write(ctx, c); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	return nil
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request, p *Principal) {
	writeJSON(w, http.StatusOK, viewSession(p))
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := a.Logout(w, r, p); err != nil {
		a.writeServiceError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// throttle counts failed logins over the last minute, per key: the pair of
// an email and a client address (one person's mistakes lock that person
// there, not the colleagues behind the same office address), an email from
// any address (guesses at one account from many hosts), and an address for
// any email (guesses at many accounts from one host). The leader holds the
// cluster's counts (LoginThrottle); a node that cannot reach it counts here.
type throttle struct {
	mu    sync.Mutex
	fails map[string][]time.Time
}

const throttleWindow = time.Minute

// throttleMax is the failures a key takes in a window, by its kind.
func throttleMax(key string) int {
	switch {
	case strings.HasPrefix(key, "pair:"):
		return 5
	case strings.HasPrefix(key, "email:"):
		return 20
	}
	return 50 // "ip:"
}

// loginKeys are the throttle's keys for one login attempt.
func loginKeys(email, ip string) []string {
	return []string{"pair:" + email + "\x00" + ip, "email:" + email, "ip:" + ip}
}

// Throttle operations, as the leader serves them to the other nodes.
const (
	// ThrottleAttempt counts an attempt as a failure and returns the wait;
	// an attempt that must wait is not counted.
	ThrottleAttempt = "attempt"
	// ThrottleRefund takes back the count of an attempt that succeeded.
	ThrottleRefund = "refund"
	// ThrottleReset forgets a key's failures.
	ThrottleReset = "reset"
)

// LoginThrottle applies op to the keys on this node's counts and returns
// how long a login under them must wait: the leader serves it to the
// other nodes (node/DESIGN.md), so the counts are the cluster's.
func (a *API) LoginThrottle(op string, keys []string) time.Duration {
	now := a.now()
	switch op {
	case ThrottleAttempt:
		return a.throttle.attempt(now, keys...)
	case ThrottleRefund:
		a.throttle.refund(keys...)
		return 0
	case ThrottleReset:
		for _, k := range keys {
			a.throttle.reset(k)
		}
		return 0
	}
	return a.throttle.blocked(now, keys...)
}

// loginThrottle asks the cluster's counts (the leader's), or this node's
// when the leader cannot be asked.
func (a *API) loginThrottle(ctx context.Context, op string, keys []string) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if wait, err := a.svc.LoginThrottle(ctx, op, keys); err == nil {
		return wait
	}
	return a.LoginThrottle(op, keys)
}

func newThrottle() *throttle { return &throttle{fails: map[string][]time.Time{}} }

func (t *throttle) recent(now time.Time, key string) []time.Time {
	var keep []time.Time
	for _, f := range t.fails[key] {
		if now.Sub(f) < throttleWindow {
			keep = append(keep, f)
		}
	}
	if keep == nil {
		delete(t.fails, key)
	} else {
		t.fails[key] = keep
	}
	return keep
}

// attempt counts an attempt under every key, in one step, unless one of
// them must wait: then it returns the wait and counts nothing.
func (t *throttle) attempt(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := t.blockedLocked(now, keys...); wait > 0 {
		return wait
	}
	if len(t.fails) > 100000 { // bound memory under a spray of addresses
		t.fails = map[string][]time.Time{}
	}
	for _, k := range keys {
		t.fails[k] = append(t.recent(now, k), now)
	}
	return 0
}

// blocked returns how long to wait when any key has too many recent failures.
func (t *throttle) blocked(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blockedLocked(now, keys...)
}

func (t *throttle) blockedLocked(now time.Time, keys ...string) time.Duration {
	var wait time.Duration
	for _, k := range keys {
		if f, most := t.recent(now, k), throttleMax(k); len(f) >= most {
			if d := throttleWindow - now.Sub(f[len(f)-most]); d > wait {
				wait = d
			}
		}
	}
	return wait
}

// refund takes back each key's newest failure.
func (t *throttle) refund(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if f := t.fails[k]; len(f) > 1 {
			t.fails[k] = f[:len(f)-1]
		} else {
			delete(t.fails, k)
		}
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.fails, key)
	t.mu.Unlock()
}
