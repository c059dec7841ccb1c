package replication

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"lintel/consensus"
	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/pki"
)

// Local is the node's own consensus, as the Forwarder needs it.
type Local interface {
	IsLeader() bool
	Leader() (id, raftAddr string)
	ApplyEncoded(ctx context.Context, b []byte) (uint64, state.Result, error)
	ReadIndex(ctx context.Context) (uint64, error)
	TermOf(index uint64) uint64
}

// Forwarder sends a write to the leader: applied here when this node leads,
// otherwise over one authenticated internal call. The leader never forwards
// again; the caller retries with the same bytes (and so the same request id,
// which the state deduplicates) until its deadline.
type Forwarder struct {
	NodeID  string
	Local   Local
	Members *Membership
	// Client dials the others' Raft port with this node's certificate
	// (NewInternalClient); Admit decides, per call, whether the calling
	// node's certificate still speaks for the cluster.
	Client    *http.Client
	Admit     pki.Admit
	OnForward func() // counts forwarded writes
	replays   replayCache
}

// Internal paths, served on every node's HTTP address.
const (
	PathApply     = "/internal/v1/apply"
	PathReadIndex = "/internal/v1/read-index"
	maxClockSkew  = 2 * time.Minute
)

// NewInternalClient makes the client of the internal calls: each
// connection is a mutual-TLS link of the Mux to the node whose Raft address
// the URL names. A connection per concurrent call is kept: with net/http's
// default of two idle connections per host, 64 clients writing through a
// follower opened a new connection for nearly every write.
func NewInternalClient(mux *Mux, members *Membership, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy: nil,
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			want, _ := ctx.Value(wantNode{}).(string)
			if want == "" {
				want = members.idByRaft(addr)
			}
			return mux.Dial(ctx, addr, ProtoHTTP, want)
		},
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// errRetry: try again, nothing was applied. errMaybe: try again with the
// same bytes; the last attempt may have been applied.
var (
	errRetry = errors.New("retry")
	errMaybe = errors.New("retry; the last attempt may have been applied")
)

// Apply commits an encoded command through the leader. It returns the index
// at which it was applied, the term of that entry (0 when not known), and
// the state's result.
func (f *Forwarder) Apply(ctx context.Context, b []byte) (uint64, uint64, state.Result, error) {
	var idx, term uint64
	var res state.Result
	err := f.retry(ctx, func() error {
		var err error
		if f.Local.IsLeader() {
			idx, res, err = f.Local.ApplyEncoded(ctx, b)
			switch {
			case errors.Is(err, consensus.ErrNotLeader):
				return errRetry
			case errors.Is(err, consensus.ErrUnknownOutcome):
				return errMaybe
			}
			return err
		}
		var out applyAnswer
		if err := f.call(ctx, PathApply, b, &out); err != nil {
			return err
		}
		if f.OnForward != nil {
			f.OnForward()
		}
		idx, term, res = out.Index, out.Term, out.Result
		return nil
	})
	return idx, term, res, err
}

// ReadIndex returns the index this node must reach to serve a linearizable read.
func (f *Forwarder) ReadIndex(ctx context.Context) (uint64, error) {
	var idx uint64
	err := f.retry(ctx, func() error {
		if f.Local.IsLeader() {
			var err error
			idx, err = f.Local.ReadIndex(ctx)
			if errors.Is(err, consensus.ErrNotLeader) {
				return errRetry
			}
			return err
		}
		var out applyAnswer
		if err := f.call(ctx, PathReadIndex, nil, &out); err != nil {
			if errors.Is(err, errMaybe) {
				return errRetry // a read changes nothing: its outcome is never in doubt
			}
			return err
		}
		idx = out.Index
		return nil
	})
	return idx, err
}

// noLeaderGiveUp: an election takes well under a second; a node that has
// known no leader for this long is cut off, and says so at once rather than
// at the end of the caller's deadline.
const noLeaderGiveUp = 2 * time.Second

// retry runs try until it succeeds, fails for good, or ctx ends. A write
// that may have reached a leader reports ErrUnknownOutcome; one that never
// did reports ErrNoLeader.
func (f *Forwarder) retry(ctx context.Context, try func() error) error {
	wait := 10 * time.Millisecond
	maybe := false
	var leaderless time.Time
	for {
		err := try()
		switch {
		case errors.Is(err, errMaybe):
			maybe = true
		case !errors.Is(err, errRetry):
			return err
		}
		if id, _ := f.Local.Leader(); id != "" {
			leaderless = time.Time{}
		} else if leaderless.IsZero() {
			leaderless = time.Now()
		}
		giveUp := !leaderless.IsZero() && time.Since(leaderless) > noLeaderGiveUp
		if giveUp && !maybe {
			return consensus.ErrNoLeader
		}
		select {
		case <-ctx.Done():
			if maybe {
				return consensus.ErrUnknownOutcome
			}
			return consensus.ErrNoLeader
		case <-time.After(wait):
		}
		if wait < 200*time.Millisecond {
			wait *= 2
		}
	}
}

type applyAnswer struct {
	Index  uint64       `json:"index"`
	Term   uint64       `json:"term,omitempty"` // of the entry at Index: lets the follower apply it from its own log
	Result state.Result `json:"result"`
	Error  string       `json:"error,omitempty"`
}

// call sends one internal request to the leader. Transient failures return errRetry.
func (f *Forwarder) call(ctx context.Context, path string, body []byte, out *applyAnswer) error {
	leaderID, _ := f.Local.Leader()
	if leaderID == "" || leaderID == f.NodeID {
		return errRetry
	}
	m, ok := f.Members.Member(leaderID)
	if !ok || m.Raft == "" {
		return errRetry
	}
	req, err := newInternal(ctx, leaderID, m.Raft, path, body)
	if err != nil {
		return err
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return errMaybe // sent, perhaps received: only the request id can tell
	}
	defer resp.Body.Close()
	if err := answeredBy(resp, leaderID); err != nil {
		return errMaybe // another member holds that address now
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(out)
		if out.Error == "not_leader" {
			return errRetry
		}
		return errMaybe
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, command.MaxSize)).Decode(out); err != nil {
		return errMaybe
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("leader %s refused the forwarded call: %s", leaderID, out.Error)
	}
	return nil
}

// answeredBy checks the answer came from node id: a pooled connection to
// an address is reused for any call to that address, and the address may
// have passed to another member since the connection was made.
func answeredBy(resp *http.Response, id string) error {
	if id == "" {
		return nil
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return errors.New("the answer did not come over the nodes' TLS link")
	}
	got, ok := pki.IdentityOf(resp.TLS.PeerCertificates[0])
	if !ok || got.NodeID != id {
		return fmt.Errorf("the answer came from node %s, not %s", got.NodeID, id)
	}
	return nil
}

// wantNode carries, in a request's context, the node id the call is
// meant for: the dialer checks the certificate names it.
type wantNode struct{}

// newInternal makes an internal call to the node at raftAddr. Each call
// carries a fresh request id and its time: the receiver refuses one it has
// seen, or one too far from its clock (a replay inside a member's own TLS
// session; TLS already refuses captured bytes replayed on a new one).
func newInternal(ctx context.Context, nodeID, raftAddr, path string, body []byte) (*http.Request, error) {
	ctx = context.WithValue(ctx, wantNode{}, nodeID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+raftAddr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	var id [16]byte
	rand.Read(id[:])
	req.Header.Set("X-Lintel-Request-Id", hex.EncodeToString(id[:]))
	req.Header.Set("X-Lintel-Time", strconv.FormatInt(time.Now().UnixNano(), 10))
	return req, nil
}

// Handler serves the internal calls of the other nodes.
func (f *Forwarder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathApply, func(w http.ResponseWriter, r *http.Request) {
		body, ok := f.verify(w, r)
		if !ok {
			return
		}
		if _, err := command.Decode(body); err != nil {
			answer(w, http.StatusBadRequest, applyAnswer{Error: err.Error()})
			return
		}
		if !f.Local.IsLeader() {
			answer(w, http.StatusServiceUnavailable, applyAnswer{Error: "not_leader"})
			return
		}
		idx, res, err := f.Local.ApplyEncoded(r.Context(), body)
		switch {
		case errors.Is(err, consensus.ErrNotLeader):
			answer(w, http.StatusServiceUnavailable, applyAnswer{Error: "not_leader"})
			return
		case err != nil:
			// Unknown outcome: the sender retries with the same request id.
			answer(w, http.StatusServiceUnavailable, applyAnswer{Error: err.Error()})
			return
		}
		answer(w, http.StatusOK, applyAnswer{Index: idx, Term: f.Local.TermOf(idx), Result: res})
	})
	mux.HandleFunc("POST "+PathReadIndex, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.verify(w, r); !ok {
			return
		}
		idx, err := f.Local.ReadIndex(r.Context())
		if err != nil {
			answer(w, http.StatusServiceUnavailable, applyAnswer{Error: err.Error()})
			return
		}
		answer(w, http.StatusOK, applyAnswer{Index: idx})
	})
	return mux
}

// verify admits an internal call: it came over the Mux (a member's
// certificate, checked again now: a node removed since it connected is
// refused), its request id is new and its time is near this node's clock.
func (f *Forwarder) verify(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		answer(w, http.StatusUnauthorized, applyAnswer{Error: "node authentication failed: internal calls come over the nodes' TLS link"})
		return nil, false
	}
	id, ok := pki.IdentityOf(r.TLS.PeerCertificates[0])
	if !ok || f.Admit(id) != nil {
		answer(w, http.StatusUnauthorized, applyAnswer{Error: "node authentication failed"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, command.MaxSize))
	if err != nil {
		answer(w, http.StatusRequestEntityTooLarge, applyAnswer{Error: "body too large"})
		return nil, false
	}
	n, err := strconv.ParseInt(r.Header.Get("X-Lintel-Time"), 10, 64)
	at := time.Unix(0, n)
	skew := time.Since(at)
	if err != nil || skew > maxClockSkew || skew < -maxClockSkew {
		answer(w, http.StatusUnauthorized, applyAnswer{Error: "stale internal call: the clocks of the two nodes differ by more than 2 minutes, or it was replayed"})
		return nil, false
	}
	rid := r.Header.Get("X-Lintel-Request-Id")
	if len(rid) != 32 {
		answer(w, http.StatusBadRequest, applyAnswer{Error: "an internal call needs a request id of 32 hex digits"})
		return nil, false
	}
	if !f.replays.fresh(rid, time.Now()) {
		answer(w, http.StatusConflict, applyAnswer{Error: "replayed internal call: this request id was seen before"})
		return nil, false
	}
	return body, true
}

func answer(w http.ResponseWriter, status int, a applyAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(a)
}

// PathStatus answers another node's question about this node's Raft progress.
const PathStatus = "/internal/v1/status"

// NodeStatus is one node's own account of its Raft progress.
type NodeStatus struct {
	RaftState    string    `json:"raft_state"`
	Term         uint64    `json:"term"`
	AppliedIndex uint64    `json:"applied_index"`
	LastContact  time.Time `json:"last_contact"`
}

// Status asks node nodeID, at Raft address raftAddr, for its status.
func (f *Forwarder) Status(ctx context.Context, nodeID, raftAddr string) (NodeStatus, error) {
	var st NodeStatus
	req, err := newInternal(ctx, nodeID, raftAddr, PathStatus, nil)
	if err != nil {
		return st, err
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := answeredBy(resp, nodeID); err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status from %s: %s", raftAddr, resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st)
	return st, err
}

// StatusHandler serves PathStatus with the node's own status.
func (f *Forwarder) StatusHandler(own func() NodeStatus) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.verify(w, r); !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(own())
	})
}

// PathUnlock asks the node that runs a reader to unlock its door.
const PathUnlock = "/internal/v1/unlock"

// PathMember asks a member whether a node is one (a replica that is behind
// asks before it admits a node it does not know yet).
const PathMember = "/internal/v1/member"

// PathLoginThrottle asks the leader for the cluster's counts of failed logins.
const PathLoginThrottle = "/internal/v1/login-throttle"

// CallNode sends a signed internal request to node nodeID and decodes its
// JSON answer into out. The body is JSON.
func (f *Forwarder) CallNode(ctx context.Context, nodeID, path string, in, out any) error {
	m, ok := f.Members.Member(nodeID)
	if !ok || m.Raft == "" {
		return fmt.Errorf("node %s is not known to gossip", nodeID)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := newInternal(ctx, nodeID, m.Raft, path, body)
	if err != nil {
		return err
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := answeredBy(resp, nodeID); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var a applyAnswer
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a)
		return fmt.Errorf("node %s answered %s: %s", nodeID, resp.Status, a.Error)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

// Internal serves an internal call from another node (see verify); fn gets its body and returns the answer
// (or an error, answered 502 with its text).
func (f *Forwarder) Internal(fn func(ctx context.Context, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := f.verify(w, r)
		if !ok {
			return
		}
		out, err := fn(r.Context(), body)
		if err != nil {
			answer(w, http.StatusBadGateway, applyAnswer{Error: err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

// replayCache remembers the request ids of the internal calls seen within
// the freshness window: two generations, each spanning the window, so an
// id is remembered for at least the window after it was first seen. A
// generation that grows past maxReplayIDs starts the next early (a flood
// of calls costs bounded memory; the TLS link is what stops outsiders).
type replayCache struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	since     time.Time
}

const maxReplayIDs = 1 << 20

func (c *replayCache) fresh(id string, now time.Time) bool {
	if len(id) != 32 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || now.Sub(c.since) > 2*maxClockSkew || len(c.cur) >= maxReplayIDs {
		c.prev, c.cur, c.since = c.cur, make(map[string]struct{}), now
	}
	if _, ok := c.cur[id]; ok {
		return false
	}
	if _, ok := c.prev[id]; ok {
		return false
	}
	c.cur[id] = struct{}{}
	return true
}
