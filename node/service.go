package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"lintel/consensus"
	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/pki"
	"lintel/reader"
	"lintel/replication"
	"lintel/ui/api"
)

// service is what the API and the console use: writes through the
// Forwarder, reads from the local replica.
type service struct{ n *Node }

var _ api.Service = service{}

func (s service) Write(ctx context.Context, c command.Command) (state.Result, error) {
	if t := c.Type(); t > command.Baseline {
		servers, err := s.n.raft.Servers()
		if err != nil {
			return state.Result{}, api.ErrNoQuorum
		}
		var ids []string
		for _, sv := range servers {
			ids = append(ids, sv.ID)
		}
		if id, known := lowestCommandLevel(ids, s.n.members.Member); t > known {
			return state.Result{Err: &state.Rejection{Kind: state.Conflict, Code: "upgrade_needed", Message: fmt.Sprintf(
				"node %s runs a build that does not know this kind of change (command type %d): upgrade every node, then try again", id, t)}}, nil
		}
	}
	b, err := command.Encode(c)
	if err != nil {
		return state.Result{}, err
	}
	idx, term, res, err := s.n.fwd.Apply(ctx, b)
	if err != nil {
		return res, mapErr(err)
	}
	// Read-your-write: answer only once this node has applied the write;
	// a follower that holds the entry applies it at once (CatchUp).
	if err := s.n.raft.CatchUp(ctx, idx, term); err != nil {
		return res, api.ErrUnknownOutcome
	}
	return res, nil
}

// lowestCommandLevel is the newest command type every Raft member's build
// (and this one) knows, and the member that limits it ("" for this build); a
// member gossip has not described (or an older build) counts as Baseline.
func lowestCommandLevel(ids []string, member func(id string) (replication.Member, bool)) (string, command.Type) {
	lowest, who := command.Last, ""
	for _, id := range ids {
		lvl := command.Baseline
		if m, ok := member(id); ok && m.Commands != 0 {
			lvl = command.Type(m.Commands)
		}
		if lvl < lowest {
			lowest, who = lvl, id
		}
	}
	return who, lowest
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, consensus.ErrNoLeader):
		return api.ErrNoQuorum
	case errors.Is(err, consensus.ErrUnknownOutcome), errors.Is(err, context.DeadlineExceeded):
		return api.ErrUnknownOutcome
	}
	return err
}

func (s service) Events(f reader.EventFilter) ([]reader.Event, error) { return s.n.events.List(f) }

func (s service) Read(fn func(*state.State)) { s.n.raft.Read(fn) }

func (s service) Strong(ctx context.Context) error {
	idx, err := s.n.fwd.ReadIndex(ctx)
	if err != nil {
		return mapErr(err)
	}
	return s.n.raft.WaitForIndex(ctx, idx)
}

func (n *Node) ownStatus() replication.NodeStatus {
	return replication.NodeStatus{
		RaftState: n.raft.State(), Term: n.raft.Term(), AppliedIndex: n.raft.AppliedIndex(), LastContact: n.raft.LastContact(),
	}
}

// Cluster joins three views: the Raft configuration (who votes), gossip
// (who is alive, where) and each node's own status (asked in parallel).
func (s service) Cluster(ctx context.Context) (api.ClusterView, error) {
	n := s.n
	servers, err := n.raft.Servers()
	if err != nil {
		return api.ClusterView{}, err
	}
	leader, _ := n.raft.Leader()
	var removed map[string]state.RemovedNode
	n.raft.Read(func(st *state.State) {
		removed = map[string]state.RemovedNode{}
		for k, v := range st.RemovedNodes.All() {
			removed[k] = v
		}
	})
	members := map[string]replication.Member{}
	for _, m := range n.members.Members() {
		members[m.ID] = m
	}
	view := api.ClusterView{Leader: leader, Term: n.raft.Term()}
	seen := map[string]bool{}
	add := func(id, raftAddr, suffrage string) {
		seen[id] = true
		m, ok := members[id]
		nv := api.NodeView{ID: id, Building: m.Building, HTTPAddr: m.HTTP, RaftAddr: raftAddr, GossipAddr: m.Gossip,
			Suffrage: suffrage, RaftState: "unknown", GossipState: "dead"}
		if ok {
			nv.GossipState = m.State
			if nv.RaftAddr == "" {
				nv.RaftAddr = m.Raft
			}
		}
		view.Nodes = append(view.Nodes, nv)
	}
	for _, sv := range servers {
		suff := "nonvoter"
		if sv.Voter {
			suff = "voter"
		}
		add(sv.ID, sv.Address, suff)
	}
	for id, m := range members {
		if !seen[id] && !isRemoved(removed, m) && m.State != "dead" && m.State != "left" {
			add(id, m.Raft, "nonvoter") // joining: gossip sees it, Raft does not yet
		}
	}
	sort.Slice(view.Nodes, func(i, j int) bool { return view.Nodes[i].ID < view.Nodes[j].ID })

	ctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for i := range view.Nodes {
		nv := &view.Nodes[i]
		if nv.ID == n.cfg.NodeID {
			fill(nv, n.ownStatus())
			continue
		}
		if nv.RaftAddr == "" || nv.GossipState == "dead" || nv.GossipState == "left" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := n.fwd.Status(ctx, nv.ID, nv.RaftAddr); err == nil {
				fill(nv, st)
			}
		}()
	}
	wg.Wait()
	return view, nil
}

func fill(nv *api.NodeView, st replication.NodeStatus) {
	nv.RaftState = st.RaftState
	if nv.RaftState == "shutdown" {
		nv.RaftState = "unknown"
	}
	nv.AppliedIndex = st.AppliedIndex
	if !st.LastContact.IsZero() {
		t := st.LastContact.UTC()
		nv.LastContact = &t
	}
	if st.RaftState == "leader" {
		t := time.Now().UTC()
		nv.LastContact = &t
	}
}

// RemoveNode commits the removal (so no leader adds the node back while it
// still gossips), then waits for the leader loop to take it out of Raft.
func (s service) RemoveNode(ctx context.Context, actor, id string) error {
	n := s.n
	servers, err := n.raft.Servers()
	if err != nil {
		return err
	}
	known := false
	for _, sv := range servers {
		known = known || sv.ID == id
	}
	m, inGossip := n.members.Member(id)
	if !known && !inGossip {
		return api.ErrNodeNotFound
	}
	// The removed node may hold the join token: a new one replaces it in the same entry.
	var caPEM []byte
	n.raft.Read(func(st *state.State) { caPEM = st.TLS.CACert })
	newToken := ""
	if ca, err := pki.ParseCert(caPEM); err == nil {
		if t, err := pki.NewJoinToken(&pki.CA{Cert: ca}); err == nil {
			newToken = t.String()
		}
	}
	if _, err := s.Write(ctx, command.Command{
		Header: command.Header{RequestID: api.NewID(), Actor: actor, At: time.Now().UTC()},
		Body:   &command.RemoveNode{NodeID: id, Instance: m.Instance, JoinToken: newToken, GossipKey: newGossipKey()},
	}); err != nil {
		return err
	}
	for {
		servers, err := n.raft.Servers()
		if err != nil {
			return err
		}
		still := false
		for _, sv := range servers {
			still = still || sv.ID == id
		}
		if !still {
			n.members.Forget(id)
			return nil
		}
		select {
		case <-ctx.Done():
			return api.ErrUnknownOutcome
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Unlock opens a reader's door: here when this node runs the reader,
// otherwise on the node that does, through a signed internal call.
func (s service) Unlock(ctx context.Context, readerID, by string) (reader.Event, error) {
	var rd state.Reader
	var known bool
	s.n.raft.Read(func(st *state.State) { rd, known = st.Readers.Get(readerID) })
	if !known {
		return reader.Event{}, reader.ErrUnknown
	}
	if rd.NodeID == s.n.cfg.NodeID {
		return s.n.ctrl.Unlock(readerID, by)
	}
	var e reader.Event
	if err := s.n.fwd.CallNode(ctx, rd.NodeID, replication.PathUnlock, unlockRequest{ReaderID: readerID, By: by}, &e); err != nil {
		return e, fmt.Errorf("%w: node %s runs reader %s and did not unlock it: %v", api.ErrNodeUnreachable, rd.NodeID, readerID, err)
	}
	return e, nil
}

type unlockRequest struct {
	ReaderID string `json:"reader_id"`
	By       string `json:"by"`
}

// unlockHandler serves another node's PathUnlock call.
func (n *Node) unlockHandler() http.Handler {
	return n.fwd.Internal(func(_ context.Context, body []byte) (any, error) {
		var req unlockRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		return n.ctrl.Unlock(req.ReaderID, req.By)
	})
}

func (s service) HasQuorum() bool { ok, _ := s.n.quorum(); return ok }

type throttleRequest struct {
	Op   string   `json:"op"`
	Keys []string `json:"keys"`
}

type throttleAnswer struct {
	WaitMS int64 `json:"wait_ms"`
}

// LoginThrottle: the leader holds the cluster's counts of failed logins, so
// guesses spread over the nodes add up; a follower asks it.
func (s service) LoginThrottle(ctx context.Context, op string, keys []string) (time.Duration, error) {
	n := s.n
	if n.raft.IsLeader() {
		return n.api.LoginThrottle(op, keys), nil
	}
	leader, _ := n.raft.Leader()
	if leader == "" {
		return 0, api.ErrNoQuorum
	}
	var out throttleAnswer
	if err := n.fwd.CallNode(ctx, leader, replication.PathLoginThrottle, throttleRequest{Op: op, Keys: keys}, &out); err != nil {
		return 0, err
	}
	return time.Duration(out.WaitMS) * time.Millisecond, nil
}

func (n *Node) loginThrottleHandler() http.Handler {
	return n.fwd.Internal(func(_ context.Context, body []byte) (any, error) {
		var req throttleRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		if len(req.Keys) > 3 || (req.Op != api.ThrottleAttempt && req.Op != api.ThrottleRefund && req.Op != api.ThrottleReset) {
			return nil, errors.New("a login throttle call takes attempt, refund or reset and at most 3 keys")
		}
		for _, k := range req.Keys {
			if len(k) > 1024 {
				return nil, errors.New("a login throttle key is at most 1024 bytes")
			}
		}
		return throttleAnswer{WaitMS: n.api.LoginThrottle(req.Op, req.Keys).Milliseconds()}, nil
	})
}

func (s service) KnowsNode(id string) bool {
	n := s.n
	removed := false
	n.raft.Read(func(st *state.State) { _, removed = st.RemovedNodes.Get(id) })
	if removed {
		return false
	}
	if servers, err := n.raft.Servers(); err == nil {
		for _, sv := range servers {
			if sv.ID == id {
				return true
			}
		}
	}
	_, ok := n.members.Member(id)
	return ok
}

func (s service) QueueOffline(c command.Command) error { return s.n.ctrl.WithholdOffline(c) }

func (s service) History(account string, fn func(state.HistoryEntry) bool) error {
	return s.n.History(account, fn)
}

func (s service) Snapshot(ctx context.Context) (uint64, error) {
	if err := s.n.raft.Snapshot(); err != nil {
		return 0, err
	}
	return s.n.raft.AppliedIndex(), nil
}

// newGossipKey is the gossip key that replaces the one a removed node holds.
func newGossipKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}
