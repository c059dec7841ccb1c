package replication

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"lintel/consensus"
	"lintel/consensus/command"
	"lintel/consensus/state"
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
	// Secret returns the cluster secret from the replicated state (nil before init).
	Secret    func() []byte
	Client    *http.Client
	OnForward func() // counts forwarded writes
}

// Internal paths, served on every node's HTTP address.
const (
	PathApply     = "/internal/v1/apply"
	PathReadIndex = "/internal/v1/read-index"
	maxClockSkew  = 2 * time.Minute
)

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
	if !ok || m.HTTP == "" {
		return errRetry
	}
	secret := f.Secret()
	if len(secret) == 0 {
		return errRetry // this node has not applied the cluster's init yet
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.HTTP+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sign(req, secret, f.NodeID, path, body)
	resp, err := f.Client.Do(req)
	if err != nil {
		return errMaybe // sent, perhaps received: only the request id can tell
	}
	defer resp.Body.Close()
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

func mac(secret []byte, node, ts, path string, body []byte) string {
	h := hmac.New(sha256.New, secret)
	fmt.Fprintf(h, "lintel-forward\n%s\n%s\n%s\n", node, ts, path)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func sign(req *http.Request, secret []byte, node, path string, body []byte) {
	ts := strconv.FormatInt(time.Now().UnixNano(), 10)
	req.Header.Set("X-Lintel-Node", node)
	req.Header.Set("X-Lintel-Time", ts)
	req.Header.Set("X-Lintel-Signature", mac(secret, node, ts, path, body))
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

func (f *Forwarder) verify(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, command.MaxSize))
	if err != nil {
		answer(w, http.StatusRequestEntityTooLarge, applyAnswer{Error: "body too large"})
		return nil, false
	}
	secret := f.Secret()
	node, ts, sig := r.Header.Get("X-Lintel-Node"), r.Header.Get("X-Lintel-Time"), r.Header.Get("X-Lintel-Signature")
	n, err := strconv.ParseInt(ts, 10, 64)
	skew := time.Since(time.Unix(0, n))
	if len(secret) == 0 || err != nil || skew > maxClockSkew || skew < -maxClockSkew ||
		!hmac.Equal([]byte(sig), []byte(mac(secret, node, ts, r.URL.Path, body))) {
		answer(w, http.StatusUnauthorized, applyAnswer{Error: "node authentication failed"})
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

// Status asks the node at httpAddr for its status.
func (f *Forwarder) Status(ctx context.Context, httpAddr string) (NodeStatus, error) {
	var st NodeStatus
	secret := f.Secret()
	if len(secret) == 0 {
		return st, errors.New("no cluster secret yet")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+PathStatus, nil)
	if err != nil {
		return st, err
	}
	sign(req, secret, f.NodeID, PathStatus, nil)
	resp, err := f.Client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status from %s: %s", httpAddr, resp.Status)
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

// PathLoginThrottle asks the leader for the cluster's counts of failed logins.
const PathLoginThrottle = "/internal/v1/login-throttle"

// CallNode sends a signed internal request to node nodeID and decodes its
// JSON answer into out. The body is JSON.
func (f *Forwarder) CallNode(ctx context.Context, nodeID, path string, in, out any) error {
	m, ok := f.Members.Member(nodeID)
	if !ok || m.HTTP == "" {
		return fmt.Errorf("node %s is not known to gossip", nodeID)
	}
	secret := f.Secret()
	if len(secret) == 0 {
		return errors.New("no cluster secret yet")
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.HTTP+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sign(req, secret, f.NodeID, path, body)
	resp, err := f.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var a applyAnswer
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a)
		return fmt.Errorf("node %s answered %s: %s", nodeID, resp.Status, a.Error)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

// Internal serves an internal call from another node: the request must be
// signed with the cluster secret; fn gets its body and returns the answer
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
