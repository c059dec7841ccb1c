package replication

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"lintel/consensus/state"
)

func start(t *testing.T, id, key string) *Membership {
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
	a, b := start(t, "a", ""), start(t, "b", "")
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
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))
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

// fakeLeader is the leader's consensus as the internal handler sees it.
type leaderStub struct{ applied [][]byte }

func (l *leaderStub) IsLeader() bool                            { return true }
func (l *leaderStub) Leader() (string, string)                  { return "leader", "" }
func (l *leaderStub) ReadIndex(context.Context) (uint64, error) { return 42, nil }
func (l *leaderStub) TermOf(uint64) uint64                      { return 7 }
func (l *leaderStub) ApplyEncoded(_ context.Context, b []byte) (uint64, state.Result, error) {
	l.applied = append(l.applied, b)
	return 7, state.Result{}, nil
}

// The internal calls refuse anything not signed with the cluster secret.
func TestInternalCallsNeedTheClusterSecret(t *testing.T) {
	secret := bytes.Repeat([]byte{9}, 32)
	stub := &leaderStub{}
	f := &Forwarder{NodeID: "leader", Local: stub, Secret: func() []byte { return secret }}
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()

	post := func(path string, body []byte, sign func(*http.Request)) int {
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		sign(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := []byte{1, 1, '{', '}'}
	cases := map[string]func(*http.Request){
		"unsigned":   func(*http.Request) {},
		"other key":  func(r *http.Request) { sign(r, bytes.Repeat([]byte{8}, 32), "n2", PathReadIndex, nil) },
		"other path": func(r *http.Request) { sign(r, secret, "n2", PathApply, nil) },
		"old": func(r *http.Request) {
			ts := strconv.FormatInt(time.Now().Add(-time.Hour).UnixNano(), 10)
			r.Header.Set("X-Lintel-Node", "n2")
			r.Header.Set("X-Lintel-Time", ts)
			r.Header.Set("X-Lintel-Signature", mac(secret, "n2", ts, PathReadIndex, nil))
		},
	}
	for name, s := range cases {
		if code := post(PathReadIndex, nil, s); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	if code := post(PathApply, body, func(r *http.Request) { sign(r, secret, "n2", PathApply, []byte("other body")) }); code != http.StatusUnauthorized {
		t.Errorf("body changed after signing: %d", code)
	}
	if len(stub.applied) != 0 {
		t.Fatal("an unauthenticated call was applied")
	}
	if code := post(PathReadIndex, nil, func(r *http.Request) { sign(r, secret, "n2", PathReadIndex, nil) }); code != http.StatusOK {
		t.Errorf("signed read-index: %d", code)
	}
}
