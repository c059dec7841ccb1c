package state

import (
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
}

func (s *State) applyRemoveNode(c command.Command, b *command.RemoveNode, ch *changes) (any, *Rejection) {
	r := RemovedNode{NodeID: b.NodeID, Instance: b.Instance, RemovedAt: c.At.UTC(), RemovedBy: c.Actor}
	s.RemovedNodes.Put(b.NodeID, r)
	ch.put("removed_nodes", b.NodeID)
	return r, nil
}

// IsRemoved reports whether this node id and data dir were removed.
func (s *State) IsRemoved(nodeID, instance string) bool {
	r, ok := s.RemovedNodes.Get(nodeID)
	return ok && r.Instance == instance
}
