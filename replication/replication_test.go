package replication

import (
	"bytes"
	"encoding/base64"
	"io"
	"testing"
	"time"
)

func start(t *testing.T, id string, key []byte) *Membership {
	t.Helper()
	m, err := StartMembership(MembershipConfig{Meta: Meta{ID: id, Instance: "i-" + id, Raft: "127.0.0.1:1"}, Bind: "127.0.0.1:0", Key: key, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

func alive(m *Membership, id string) bool {
	x, ok := m.Member(id)
	return ok && x.State == "alive"
}

func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGossipSharesMetaAndSeesLeave(t *testing.T) {
	a, b := start(t, "a", bytes.Repeat([]byte{1}, 32)), start(t, "b", bytes.Repeat([]byte{1}, 32))
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return alive(a, "b") && alive(b, "a") }, "nodes did not see each other")
	if m, _ := a.Member("b"); m.Instance != "i-b" || m.Gossip != b.Addr() {
		t.Fatalf("meta of b as a sees it: %+v", m)
	}
	b.Leave(time.Second)
	waitFor(t, func() bool { m, _ := a.Member("b"); return m.State == "left" }, "a did not see b leave")
	// Leaving twice is harmless (memberlist itself panics on it).
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestGossipKeyKeepsStrangersOut(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	other := bytes.Repeat([]byte{4}, 32)
	a, b, c := start(t, "a", key), start(t, "b", key), start(t, "c", other)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return alive(a, "b") }, "same key: no join")
	c.Join([]string{a.Addr()})
	time.Sleep(500 * time.Millisecond)
	if _, ok := a.Member("c"); ok {
		t.Fatal("a node with another key joined")
	}
	for _, bad := range []string{"!!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParseGossipKey(bad); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}
