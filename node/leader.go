package node

import (
	"context"
	"errors"
	"slices"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/consensus/state/voucher"
	"lintel/replication"
	"lintel/ui/api"
)

// maxVoters: at most five voters, always an odd number; further buildings
// join as non-voters, which replicate everything but do not vote.
const maxVoters = 5

// leaderLoop is the one loop that acts as leader: after winning, it waits
// for the log to be applied (Barrier), applies Init on a new cluster, then
// reconciles gossip members into Raft whenever membership changes.
func (n *Node) leaderLoop() {
	defer n.wg.Done()
	defer n.mail.close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	established := false
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-n.raft.LeaderCh():
			established = false
			n.mail.stop()
			if !isLeader {
				continue
			}
		case <-n.reconcile:
		case <-tick.C:
		}
		if !n.raft.IsLeader() {
			established = false
			n.mail.stop()
			continue
		}
		if !established {
			if err := n.establish(); err != nil {
				n.log.Warn("could not establish leadership yet", "err", err)
				continue
			}
			established = true
			n.mail.start()
		}
		n.reconcileMembers()
		n.expireLinks()
	}
}

func (n *Node) establish() error {
	if err := n.raft.Barrier(5 * time.Second); err != nil {
		return err
	}
	var initialized bool
	n.raft.Read(func(s *state.State) { initialized = s.Initialized })
	if initialized || n.initAdmin == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, res, err := n.raft.Apply(ctx, command.Command{
		Header: command.Header{RequestID: "init-" + n.initAdmin.AccountID, Actor: "system", At: time.Now().UTC()},
		Body:   n.initAdmin,
	})
	if err != nil {
		return err
	}
	if res.Err != nil && res.Err.Code != "already_initialized" {
		n.log.Error("cluster init refused", "err", res.Err)
		return nil
	}
	n.log.Info("cluster initialized", "admin_email", n.initAdmin.Email)
	for _, pub := range n.initIssuers {
		n.applySystem(ctx, "issuer-"+voucher.KeyID(pub), &command.AddIssuer{KeyID: voucher.KeyID(pub), PublicKey: pub, Name: "bootstrap"})
	}
	if n.cfg.Demo {
		n.loadDemo(ctx)
	}
	return nil
}

// expireLinks moves sent cards whose activation link expired to expired,
// releasing their credits; only when some link has expired.
func (n *Node) expireLinks() {
	now := time.Now().UTC()
	var due bool
	n.raft.Read(func(s *state.State) { due = s.LinksToExpire(now) })
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, res, err := n.raft.Apply(ctx, command.Command{
		Header: command.Header{RequestID: api.NewID(), Actor: "system", At: now, Node: n.cfg.NodeID}, Body: &command.ExpireLinks{},
	})
	if err != nil || res.Err != nil {
		n.log.Warn("link expiry not applied", "err", err, "rejection", res.Err)
	}
}

// applySystem applies a command the node makes itself (bootstrap, demo) and
// logs a failure; the request id makes a retry after a crash harmless.
func (n *Node) applySystem(ctx context.Context, requestID string, b command.Body) bool {
	_, res, err := n.raft.Apply(ctx, command.Command{
		Header: command.Header{RequestID: requestID, Actor: n.initAdmin.OperatorID, At: time.Now().UTC(), Node: n.cfg.NodeID}, Body: b,
	})
	if err != nil || res.Err != nil {
		n.log.Warn("bootstrap command not applied", "command", requestID, "err", err, "rejection", res.Err)
		return false
	}
	return true
}

// reconcileMembers adds alive gossip members that Raft does not know,
// re-addresses those that came back on a new address, keeps the voters odd
// and at most five, and carries out removals an administrator asked for.
// It never removes a node on its own: a building offline for a week stays.
func (n *Node) reconcileMembers() {
	servers, err := n.raft.Servers()
	if err != nil {
		return
	}
	inRaft := map[string]struct {
		addr  string
		voter bool
	}{}
	voters := 0
	for _, s := range servers {
		inRaft[s.ID] = struct {
			addr  string
			voter bool
		}{s.Address, s.Voter}
		if s.Voter {
			voters++
		}
	}
	var removed map[string]state.RemovedNode
	letIn := map[string]string{} // node id → instance let in with the join token
	n.raft.Read(func(s *state.State) {
		removed = make(map[string]state.RemovedNode, s.RemovedNodes.Len())
		for k, v := range s.RemovedNodes.All() {
			removed[k] = v
		}
		for k, v := range s.Members.All() {
			letIn[k] = v.Instance
		}
	})
	members := n.members.Members()
	byID := map[string]replication.Member{}
	for _, m := range members {
		byID[m.ID] = m
	}

	// Removals first, so a removed voter frees its place.
	for id := range inRaft {
		r, ok := removed[id]
		if !ok {
			continue
		}
		if inst, ok := letIn[id]; ok && inst != r.Instance && !slices.Contains(r.Earlier, inst) {
			continue // the same id let in again with a fresh data dir: it is a new member
		}
		if err := n.raft.RemoveServer(id); err != nil {
			n.log.Warn("remove server", "id", id, "err", err)
			return
		}
		n.log.Info("removed node from raft", "id", id)
		if inRaft[id].voter {
			voters--
		}
		delete(inRaft, id)
	}

	total := len(inRaft)
	for _, m := range members {
		if _, ok := inRaft[m.ID]; !ok && m.State == "alive" && !isRemoved(removed, m) && m.Raft != "" && letIn[m.ID] == m.Instance {
			total++
		}
	}
	want := min(total, maxVoters)
	if want%2 == 0 {
		want--
	}

	for _, m := range members {
		// Only a node let in with the join token (its key recorded) joins
		// Raft: gossip alone is not a member's word.
		if m.State != "alive" || m.Raft == "" || isRemoved(removed, m) || letIn[m.ID] != m.Instance {
			continue
		}
		cur, ok := inRaft[m.ID]
		switch {
		case ok && cur.addr == m.Raft && (cur.voter || voters >= want):
			continue
		case ok && cur.addr == m.Raft: // a non-voter promoted while voters are short
			if err := n.raft.AddServer(m.ID, m.Raft, true); err != nil {
				n.log.Warn("promote to voter", "id", m.ID, "err", err)
				return
			}
			voters++
			n.log.Info("promoted node to voter", "id", m.ID)
		case ok: // same id, new address: join is idempotent, the entry is replaced
			if err := n.verifyAt(m); err != nil {
				n.log.Warn("not re-addressing: the node at the new address is not that member", "id", m.ID, "raft", m.Raft, "err", err)
				continue
			}
			if err := n.raft.AddServer(m.ID, m.Raft, cur.voter); err != nil {
				n.log.Warn("re-address server", "id", m.ID, "err", err)
				return
			}
			n.log.Info("node came back on a new address", "id", m.ID, "raft", m.Raft)
		default:
			if err := n.verifyAt(m); err != nil {
				n.log.Warn("not adding: the node at its gossiped address is not that member", "id", m.ID, "raft", m.Raft, "err", err)
				continue
			}
			voter := voters < want
			if err := n.raft.AddServer(m.ID, m.Raft, voter); err != nil {
				n.log.Warn("add server", "id", m.ID, "err", err)
				return
			}
			if voter {
				voters++
			}
			n.log.Info("added node to raft", "id", m.ID, "voter", voter, "building", m.Building)
		}
	}
}

func isRemoved(removed map[string]state.RemovedNode, m replication.Member) bool {
	r, ok := removed[m.ID]
	return ok && (r.Instance == m.Instance || slices.Contains(r.Earlier, m.Instance))
}

// verifyAt checks that the node at a member's gossiped Raft address holds
// that member's certificate: gossip alone (whose key a removed node may
// keep) must not point Raft at another address.
//
// A failure is remembered for a while: an unreachable member must not cost
// the leader loop its 2 s on every round.
func (n *Node) verifyAt(m replication.Member) error {
	key := m.ID + " " + m.Raft
	if until, ok := n.verifyFailed[key]; ok && time.Now().Before(until) {
		return errors.New("it did not prove it a moment ago")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := n.mux.Dial(ctx, m.Raft, replication.ProtoHTTP, m.ID)
	if err != nil {
		if n.verifyFailed == nil {
			n.verifyFailed = map[string]time.Time{}
		}
		n.verifyFailed[key] = time.Now().Add(10 * time.Second)
		return err
	}
	delete(n.verifyFailed, key)
	return c.Close()
}
