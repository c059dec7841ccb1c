package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Requests that need no login (a phone activating, a person accepting an
// invitation, a deletion receipt, a check-in) are limited per client
// address: a phone sends a handful, a flood from one host waits.
const (
	openRate  = 5  // per second, per address
	openBurst = 20 // at once
	// openAddrsMax bounds the addresses remembered: past it the table starts
	// again (a spray of addresses costs memory, not the limit's purpose).
	openAddrsMax = 100_000
)

type addrLimiter struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newAddrLimiter() *addrLimiter { return &addrLimiter{m: map[string]*rate.Limiter{}} }

func (l *addrLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	lim, ok := l.m[addr]
	if !ok {
		if len(l.m) >= openAddrsMax {
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(openRate, openBurst)
		l.m[addr] = lim
	}
	l.mu.Unlock()
	return lim.AllowN(now, 1)
}

// limitKey is the address a limit counts: the IP, or for IPv6 its /64 (a
// host or a network hands out as many addresses in it as it likes).
func limitKey(ip string) string {
	if p := net.ParseIP(ip); p != nil && p.To4() == nil {
		return p.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip
}

// open wraps a handler that needs no login with the per-address limit.
func (a *API) open(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.openLimit.allow(limitKey(clientIP(r)), a.now()) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too_many_requests", "", "too many requests from this address; wait a second and try again")
			return
		}
		h(w, r)
	}
}

// bindKey ties a request's Idempotency-Key to what it acts on (a link's
// hash, a card id): the requests that need no login share one principal,
// so a key answered for one link must not answer for another.
func bindKey(r *http.Request, to string) {
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		sum := sha256.Sum256([]byte(k + "\n" + to))
		r.Header.Set("Idempotency-Key", hex.EncodeToString(sum[:]))
	}
}

// precheck refuses, from this node's replica, a write that needs no login
// and that the state would refuse anyway, so that it never reaches the log.
// A refusal for something this replica does not know (a link sent a moment
// ago through another node) catches up with the leader once and checks
// again. It reports false when it has answered.
//
// A retry with an Idempotency-Key the state already answered passes: the
// write then returns the first answer (a phone that lost it asks again).
func (a *API) precheck(w http.ResponseWriter, r *http.Request, p *Principal, body command.Body) bool {
	c := command.Command{Header: command.Header{At: a.now().UTC()}, Body: body}
	var rej *state.Rejection
	key := r.Header.Get("Idempotency-Key")
	check := func() {
		a.svc.Read(func(s *state.State) {
			if _, done := s.DedupResult(idempotentRequestID(p.Operator.ID, key)); key != "" && done {
				rej = nil
				return
			}
			rej = s.Check(c, c.At)
		})
	}
	check()
	if rej != nil && rej.Kind == state.NotFound {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if a.svc.Strong(ctx) == nil {
			check()
		}
		cancel()
	}
	if rej != nil {
		writeRejection(w, rej)
		return false
	}
	return true
}
