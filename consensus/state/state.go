// Package state is the registry every node holds: deterministic, with no I/O,
// no clock and no randomness. Time, ids, tokens and keys arrive in commands.
// Applying the same log gives byte-identical state on every node.
package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"lintel/consensus/command"
)

// Kind classifies a rejection; the API maps each kind to one HTTP status.
type Kind int

const (
	Invalid   Kind = iota + 1 // 400
	NotFound                  // 404
	Conflict                  // 409
	Forbidden                 // 403
)

// Rejection is a business refusal returned by Apply. It changes nothing.
type Rejection struct {
	Kind    Kind   `json:"kind"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (r *Rejection) Error() string { return r.Message }

func reject(k Kind, code, field, format string, args ...any) *Rejection {
	return &Rejection{Kind: k, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Result is what applying one command answers: a JSON value or a rejection.
type Result struct {
	Value json.RawMessage `json:"value,omitempty"`
	Err   *Rejection      `json:"error,omitempty"`
}

// Change tells watchers that a record changed at a Raft index.
type Change struct {
	Index uint64 `json:"index"`
	Table string `json:"table"`
	ID    string `json:"id"`
	Op    string `json:"op"` // put or delete
}

// Retry windows of the dedup table: a plain request id guards against the
// retries of an unknown outcome; an Idempotency-Key is kept 24 h (SPEC 3.1).
const (
	DedupRetryWindow       = 2 * time.Minute
	DedupIdempotencyWindow = 24 * time.Hour
)

// State is the whole replicated registry. Records in the maps are values and
// are replaced, never changed in place, so a shallow clone is an immutable copy.
type State struct {
	Index         uint64                 `json:"index"`
	Clock         time.Time              `json:"clock"` // the latest command time applied
	Initialized   bool                   `json:"initialized"`
	ClusterSecret []byte                 `json:"cluster_secret"`
	Accounts      map[string]Account     `json:"accounts"`
	Profiles      map[string]Profile     `json:"profiles"`
	Operators     map[string]Operator    `json:"operators"`
	Sessions      map[string]Session     `json:"sessions"` // by token hash
	Sites         map[string]Site        `json:"sites"`
	RemovedNodes  map[string]RemovedNode `json:"removed_nodes"`
	Dedup         map[string]DedupEntry  `json:"dedup"`
	// DedupOrder lists request ids per window in the order they were applied,
	// so expiry is deterministic and cheap.
	DedupRetry      []string `json:"dedup_retry"`
	DedupIdempotent []string `json:"dedup_idempotent"`

	operatorByEmail map[string]string // derived: lower-case email → operator id
	siteByName      map[string]string // derived: account id + lower-case name → site id
}

// DedupEntry keeps the first answer to a request id.
type DedupEntry struct {
	At     time.Time `json:"at"`
	Index  uint64    `json:"index"`
	Result Result    `json:"result"`
}

// New returns an empty state.
func New() *State {
	s := &State{
		Accounts:     map[string]Account{},
		Profiles:     map[string]Profile{},
		Operators:    map[string]Operator{},
		Sessions:     map[string]Session{},
		Sites:        map[string]Site{},
		RemovedNodes: map[string]RemovedNode{},
		Dedup:        map[string]DedupEntry{},
	}
	s.reindex()
	return s
}

// reindex rebuilds the derived indexes after a restore.
func (s *State) reindex() {
	s.operatorByEmail = make(map[string]string, len(s.Operators))
	for id, o := range s.Operators {
		s.operatorByEmail[normEmail(o.Email)] = id
	}
	s.siteByName = make(map[string]string, len(s.Sites))
	for id, x := range s.Sites {
		s.siteByName[siteNameKey(x.AccountID, x.Name)] = id
	}
}

// Apply applies one command at a Raft index. It never panics on bad input:
// a command that breaks a rule returns a Rejection and changes nothing.
func (s *State) Apply(index uint64, c command.Command) (Result, []Change) {
	s.Index = index
	if c.At.After(s.Clock) {
		s.Clock = c.At.UTC()
	}
	s.expireDedup()
	if e, ok := s.Dedup[c.RequestID]; ok && c.RequestID != "" {
		return e.Result, nil
	}
	ch := &changes{index: index}
	var value any
	rej := Validate(c)
	if rej == nil {
		value, rej = s.dispatch(c, ch)
	}
	res := Result{Err: rej}
	if rej == nil {
		if value != nil {
			b, err := json.Marshal(value)
			if err != nil {
				res = Result{Err: reject(Invalid, "internal", "", "could not encode the answer: %v", err)}
			} else {
				res.Value = b
			}
		}
	} else {
		ch.list = nil
	}
	s.remember(c, index, res)
	return res, ch.list
}

func (s *State) dispatch(c command.Command, ch *changes) (any, *Rejection) {
	switch b := c.Body.(type) {
	case *command.Init:
		return s.applyInit(c, b, ch)
	case *command.CreateSession:
		return s.applyCreateSession(c, b, ch)
	case *command.DeleteSession:
		return s.applyDeleteSession(b, ch)
	case *command.CreateSite:
		return s.applyCreateSite(c, b, ch)
	case *command.DeleteSite:
		return s.applyDeleteSite(b, ch)
	case *command.RemoveNode:
		return s.applyRemoveNode(c, b, ch)
	}
	return nil, reject(Invalid, "unknown_command", "", "command type %d is not known to this node", c.Type())
}

func (s *State) remember(c command.Command, index uint64, res Result) {
	if c.RequestID == "" {
		return
	}
	s.Dedup[c.RequestID] = DedupEntry{At: c.At.UTC(), Index: index, Result: res}
	if c.Idempotent {
		s.DedupIdempotent = append(s.DedupIdempotent, c.RequestID)
	} else {
		s.DedupRetry = append(s.DedupRetry, c.RequestID)
	}
}

// expireDedup drops answers older than their window, measured on the state clock.
func (s *State) expireDedup() {
	s.DedupRetry = s.expireQueue(s.DedupRetry, DedupRetryWindow)
	s.DedupIdempotent = s.expireQueue(s.DedupIdempotent, DedupIdempotencyWindow)
}

func (s *State) expireQueue(q []string, window time.Duration) []string {
	cut := s.Clock.Add(-window)
	n := 0
	for n < len(q) {
		e, ok := s.Dedup[q[n]]
		if ok && !e.At.Before(cut) {
			break
		}
		delete(s.Dedup, q[n])
		n++
	}
	if n == 0 {
		return q
	}
	// Copy rather than reslice so the dropped ids do not pin memory.
	return append([]string(nil), q[n:]...)
}

// Clone returns a copy that later Apply calls do not change.
func (s *State) Clone() *State {
	c := *s
	c.Accounts = maps.Clone(s.Accounts)
	c.Profiles = maps.Clone(s.Profiles)
	c.Operators = maps.Clone(s.Operators)
	c.Sessions = maps.Clone(s.Sessions)
	c.Sites = maps.Clone(s.Sites)
	c.RemovedNodes = maps.Clone(s.RemovedNodes)
	c.Dedup = maps.Clone(s.Dedup)
	c.DedupRetry = append([]string(nil), s.DedupRetry...)
	c.DedupIdempotent = append([]string(nil), s.DedupIdempotent...)
	c.operatorByEmail = maps.Clone(s.operatorByEmail)
	c.siteByName = maps.Clone(s.siteByName)
	return &c
}

// DedupResult returns the stored answer to a request id, if it is still kept.
func (s *State) DedupResult(requestID string) (Result, bool) {
	e, ok := s.Dedup[requestID]
	return e.Result, ok
}

type changes struct {
	index uint64
	list  []Change
}

func (c *changes) put(table, id string) {
	c.list = append(c.list, Change{Index: c.index, Table: table, ID: id, Op: "put"})
}

func (c *changes) del(table, id string) {
	c.list = append(c.list, Change{Index: c.index, Table: table, ID: id, Op: "delete"})
}
