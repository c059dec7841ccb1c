package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"lintel/consensus/command"
)

// RemovedNode is a node an administrator removed. The leader does not add it
// back while the same data dir (Instance) still gossips.
type RemovedNode struct {
	NodeID    string    `json:"node_id"`
	Instance  string    `json:"instance"`
	RemovedAt time.Time `json:"removed_at"`
	RemovedBy string    `json:"removed_by"`
	// Earlier lists the data dirs of this id removed before Instance.
	Earlier []string `json:"earlier,omitempty"`
}

func (s *State) applyRemoveNode(c command.Command, b *command.RemoveNode, ch *changes) (any, *Rejection) {
	inst := b.Instance
	// The data dir let in is the one removed, whatever gossip says (a
	// removed node could gossip another instance to keep its record).
	if m, ok := s.Members.Get(b.NodeID); ok {
		inst = m.Instance
		s.Members.Delete(b.NodeID)
		ch.del("members", b.NodeID)
	}
	r := RemovedNode{NodeID: b.NodeID, Instance: inst, RemovedAt: c.At.UTC(), RemovedBy: c.Actor}
	if old, ok := s.RemovedNodes.Get(b.NodeID); ok {
		r.Earlier = append(append([]string(nil), old.Earlier...), old.Instance)
	}
	s.RemovedNodes.Put(b.NodeID, r)
	ch.put("removed_nodes", b.NodeID)
	if b.JoinToken != "" && len(s.TLS.CACert) > 0 {
		s.TLS.JoinToken = b.JoinToken
		ch.put("tls", "")
	}
	if k := len(b.GossipKey); (k == 16 || k == 24 || k == 32) && len(s.TLS.CACert) > 0 {
		s.TLS.GossipKey = append([]byte(nil), b.GossipKey...)
		ch.put("tls", "")
	}
	return r, nil
}

// Member is a node let into the cluster: the key of its certificate.
type Member struct {
	NodeID   string    `json:"node_id"`
	Instance string    `json:"instance"`
	Key      string    `json:"key"`
	AddedAt  time.Time `json:"added_at"`
}

func (s *State) applyAddMember(c command.Command, b *command.AddMember, ch *changes) (any, *Rejection) {
	if s.IsRemoved(b.NodeID, b.Instance) {
		return nil, reject(Conflict, "node_removed", "node_id", "node %s with this data dir was removed from the cluster: start it with a new data dir to join again", b.NodeID)
	}
	if m, ok := s.Members.Get(b.NodeID); ok && m.Instance == b.Instance && m.Key == b.Key {
		return m, nil // a retry of a join whose answer was lost: also after a rotation
	}
	if len(s.TLS.CACert) > 0 {
		if tok, ok := JoinSecretHash(s.TLS.JoinToken); !ok || b.TokenHash != tok {
			return nil, reject(Conflict, "join_refused", "", "the join token was rotated: read the current one on a member (GET /api/v1/cluster/join-token)")
		}
	}
	if m, ok := s.Members.Get(b.NodeID); ok && m.Instance != b.Instance {
		return nil, reject(Conflict, "node_id_in_use", "node_id", "node id %s is a member with another data dir: remove that node first (DELETE /api/v1/cluster/nodes/%s) or choose another --node-id", b.NodeID, b.NodeID)
	} else if ok && m.Key != b.Key {
		// Only the holder of the recorded key speaks for a member: a token
		// does not let anyone take an existing node's place.
		return nil, reject(Conflict, "node_already_member", "node_id", "node %s is already a member with another key: remove it first (DELETE /api/v1/cluster/nodes/%s), then join with a new data dir", b.NodeID, b.NodeID)
	}
	m := Member{NodeID: b.NodeID, Instance: b.Instance, Key: b.Key, AddedAt: c.At.UTC()}
	s.Members.Put(b.NodeID, m)
	ch.put("members", b.NodeID)
	return m, nil
}

func (s *State) applySetJoinToken(b *command.SetJoinToken, ch *changes) (any, *Rejection) {
	if len(s.TLS.CACert) == 0 {
		return nil, reject(Conflict, "no_cluster_ca", "", "this cluster has no certificate authority yet")
	}
	s.TLS.JoinToken = b.JoinToken
	ch.put("tls", "")
	return nil, nil
}

// JoinSecretHash is pki.SecretHash of a join token's secret (the state
// tree imports no crypto package of the node; node tests check both agree).
func JoinSecretHash(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, "lintel-join-1.")
	secret, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || secret == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte("lintel-join-token\n" + secret))
	return hex.EncodeToString(sum[:]), true
}

// AdmitPeer decides whether a peer presenting a valid certificate of the
// cluster's CA for node id, data dir instance and key may speak for the
// cluster. A replica that holds no CA yet (a node that has just joined and
// not caught up) admits any certificate the CA signed: its state will come
// from the leader.
func (s *State) AdmitPeer(id, instance, key string) error {
	if len(s.TLS.CACert) == 0 {
		return nil
	}
	if s.IsRemoved(id, instance) {
		return fmt.Errorf("node %s was removed from the cluster", id)
	}
	m, ok := s.Members.Get(id)
	switch {
	case !ok:
		return fmt.Errorf("node %s is not a member of the cluster", id)
	case m.Instance != instance:
		return fmt.Errorf("node %s's certificate is for another data dir than the member's", id)
	case m.Key != key:
		return fmt.Errorf("node %s's certificate is not for the key it was let in with", id)
	}
	return nil
}

// IsRemoved reports whether this node id and data dir were removed.
func (s *State) IsRemoved(nodeID, instance string) bool {
	r, ok := s.RemovedNodes.Get(nodeID)
	return ok && (r.Instance == instance || slices.Contains(r.Earlier, instance))
}
