package state

import (
	"testing"

	"lintel/consensus/command"
)

// A node is admitted for the data dir and key it was let in with, and not
// after an administrator removed it; the same id with a fresh data dir
// must be let in again (with the token) to be admitted.
func TestMembersAdmitOnlyTheRecordedKey(t *testing.T) {
	h := &harness{t: t, s: New(), at: t0}
	if err := h.s.AdmitPeer("n1", "i1", "sha256:k1"); err != nil {
		t.Fatalf("a replica without a CA (not caught up) refuses: %v", err)
	}
	h.mustApply(&command.Init{AccountID: "acc", AccountName: "HQ", AccountKind: AccountEndCustomer, ProfileID: "p", OperatorID: "o",
		Email: "a@b.c", PasswordHash: "$2a$x", ClusterSecret: make([]byte, 32),
		TLS:    &command.ClusterTLS{CACert: []byte("ca"), CAKey: []byte("k"), GossipKey: make([]byte, 32), JoinToken: "lintel-join-1.a.b"},
		Member: &command.AddMember{NodeID: "n1", Instance: "i1", Key: "sha256:k1"}})
	tok, _ := JoinSecretHash("lintel-join-1.a.b")
	h.mustReject(&command.AddMember{NodeID: "n2", Instance: "i2", Key: "sha256:k2", TokenHash: "stale"}, "join_refused")
	h.mustApply(&command.AddMember{NodeID: "n2", Instance: "i2", Key: "sha256:k2", TokenHash: tok})
	h.mustApply(&command.AddMember{NodeID: "n2", Instance: "i2", Key: "sha256:k2", TokenHash: tok}) // a retry
	// The token does not let anyone take an existing member's place.
	h.mustReject(&command.AddMember{NodeID: "n2", Instance: "i2", Key: "sha256:thief", TokenHash: tok}, "node_already_member")
	for _, c := range []struct {
		id, inst, key string
		ok            bool
	}{
		{"n1", "i1", "sha256:k1", true},
		{"n2", "i2", "sha256:k2", true},
		{"n2", "i2", "sha256:minted", false}, // a certificate the CA key minted for another key
		{"n2", "other", "sha256:k2", false},
		{"n3", "i3", "sha256:k3", false}, // never let in
	} {
		if err := h.s.AdmitPeer(c.id, c.inst, c.key); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c, err)
		}
	}
	h.mustReject(&command.AddMember{NodeID: "n2", Instance: "fresh", Key: "sha256:k9", TokenHash: tok}, "node_id_in_use")
	// Gossip's word for the instance (a removed node may lie) does not keep its record.
	h.mustApply(&command.RemoveNode{NodeID: "n2", Instance: "made-up", JoinToken: "lintel-join-1.new.b"})
	if err := h.s.AdmitPeer("n2", "i2", "sha256:k2"); err == nil {
		t.Fatal("a removed node is still admitted")
	}
	if h.s.RemovedNodes.At("n2").Instance != "i2" || h.s.TLS.JoinToken != "lintel-join-1.new.b" {
		t.Fatalf("removal recorded %+v, token %q", h.s.RemovedNodes.At("n2"), h.s.TLS.JoinToken)
	}
	tok, _ = JoinSecretHash("lintel-join-1.new.b")
	h.mustReject(&command.AddMember{NodeID: "n2", Instance: "i2", Key: "sha256:k2", TokenHash: tok}, "node_removed")
	h.mustApply(&command.AddMember{NodeID: "n2", Instance: "fresh", Key: "sha256:k9", TokenHash: tok})
	if err := h.s.AdmitPeer("n2", "fresh", "sha256:k9"); err != nil {
		t.Fatalf("the same id with a fresh data dir, let in again: %v", err)
	}
	// A second removal keeps the first data dir removed too.
	h.mustApply(&command.RemoveNode{NodeID: "n2"})
	for _, inst := range []string{"i2", "fresh"} {
		h.mustReject(&command.AddMember{NodeID: "n2", Instance: inst, Key: "sha256:k2", TokenHash: tok}, "node_removed")
	}
	h.mustApply(&command.SetJoinToken{JoinToken: "lintel-join-1.c.d"})
	tok, _ = JoinSecretHash("lintel-join-1.c.d")
	_ = tok
	if h.s.TLS.JoinToken != "lintel-join-1.c.d" || string(h.s.TLS.CAKey) != "k" {
		t.Fatalf("after rotation: %+v", h.s.TLS)
	}
	h.mustReject(&command.SetJoinToken{JoinToken: "not a token"}, "invalid_command")
}
