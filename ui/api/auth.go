package api

import (
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

// principal is who a request acts for.
type principal struct {
	Operator  state.Operator
	Account   state.Account
	Profile   state.Profile
	TokenHash string
}

func (p *principal) can(area, right string) bool { return p.Profile.Allows(area, right) }

// canSite reports whether an operator limited to some sites may touch this one.
func (p *principal) canSite(siteID string) bool {
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

type authedHandler func(w http.ResponseWriter, r *http.Request, p *principal)

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
func (a *API) Authenticate(r *http.Request) (*principal, bool) {
	tok := tokenOf(r)
	if tok == "" {
		return nil, false
	}
	hash := HashToken(tok)
	var p *principal
	a.svc.Read(func(s *state.State) {
		sess, ok := s.SessionByTokenHash(hash, a.now())
		if !ok {
			return
		}
		o, ok := s.Operators[sess.OperatorID]
		if !ok || o.Status != state.OperatorActivated {
			return
		}
		acc, ok := s.Accounts[o.AccountID]
		if !ok {
			return
		}
		p = &principal{Operator: o, Account: acc, Profile: s.Profiles[o.ProfileID], TokenHash: hash}
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

func viewSession(p *principal) sessionView {
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
	email := strings.ToLower(strings.TrimSpace(req.Email))
	if email == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "required", "email", "email and password are both required")
		return
	}
	ip := clientIP(r)
	if wait := a.throttle.blocked(a.now(), "email:"+email, "ip:"+ip); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		writeError(w, http.StatusTooManyRequests, "too_many_attempts", "", "too many failed logins; wait before trying again")
		return
	}
	var op state.Operator
	var found bool
	a.svc.Read(func(s *state.State) { op, found = s.OperatorByEmail(email) })
	hash := dummyHash
	if found {
		hash = []byte(op.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil || !found {
		a.throttle.fail(a.now(), "email:"+email, "ip:"+ip)
		writeError(w, http.StatusUnauthorized, "bad_credentials", "", "the email or the password is wrong")
		return
	}
	if op.Status != state.OperatorActivated {
		writeError(w, http.StatusForbidden, "operator_not_active", "", "this operator is "+op.Status+"; ask an administrator")
		return
	}
	a.throttle.reset("email:" + email)
	token := newToken()
	now := a.now().UTC()
	p := &principal{Operator: op}
	if _, ok := a.write(w, r, p, &command.CreateSession{
		SessionID: newID(), TokenHash: HashToken(token), OperatorID: op.ID, ExpiresAt: now.Add(SessionTTL),
	}); !ok {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil, Expires: now.Add(SessionTTL),
	})
	a.svc.Read(func(s *state.State) {
		p.Account = s.Accounts[op.AccountID]
		p.Profile = s.Profiles[op.ProfileID]
	})
	writeJSON(w, http.StatusOK, viewSession(p))
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request, p *principal) {
	writeJSON(w, http.StatusOK, viewSession(p))
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, p *principal) {
	if _, ok := a.write(w, r, p, &command.DeleteSession{TokenHash: p.TokenHash}); !ok {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
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

// throttle counts failed logins per email and per client address on this node.
type throttle struct {
	mu    sync.Mutex
	fails map[string][]time.Time
}

const (
	throttleWindow = time.Minute
	throttleMax    = 5
)

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

// blocked returns how long to wait when any key has too many recent failures.
func (t *throttle) blocked(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if f := t.recent(now, k); len(f) >= throttleMax {
			if d := throttleWindow - now.Sub(f[len(f)-throttleMax]); d > wait {
				wait = d
			}
		}
	}
	return wait
}

func (t *throttle) fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fails) > 100000 { // bound memory under a spray of addresses
		t.fails = map[string][]time.Time{}
	}
	for _, k := range keys {
		t.fails[k] = append(t.recent(now, k), now)
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.fails, key)
	t.mu.Unlock()
}

