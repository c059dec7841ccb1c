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
	h.mustApply(&command.AddMember{NodeID: "n2", Instance: "i2", Key: "sha256:k2"})
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
	h.mustReject(&command.AddMember{NodeID: "n2", Instance: "fresh", Key: "sha256:k9"}, "node_id_in_use")
	h.mustApply(&command.RemoveNode{NodeID: "n2", Instance: "i2"})
	if err := h.s.AdmitPeer("n2", "i2", "sha256:k2"); err == nil {
		t.Fatal("a removed node is still admitted")
	}
	h.mustReject(&command.AddMember{NodeID: "n2", Instance: "i2", Key: "sha256:k2"}, "node_removed")
	h.mustApply(&command.AddMember{NodeID: "n2", Instance: "fresh", Key: "sha256:k9"})
	if err := h.s.AdmitPeer("n2", "fresh", "sha256:k9"); err != nil {
		t.Fatalf("the same id with a fresh data dir, let in again: %v", err)
	}
	h.mustApply(&command.SetJoinToken{JoinToken: "lintel-join-1.c.d"})
	if h.s.TLS.JoinToken != "lintel-join-1.c.d" || string(h.s.TLS.CAKey) != "k" {
		t.Fatalf("after rotation: %+v", h.s.TLS)
	}
	h.mustReject(&command.SetJoinToken{JoinToken: "not a token"}, "invalid_command")
}
