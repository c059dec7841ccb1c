package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"lintel/consensus/command"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// harness applies commands at increasing indexes and times.
type harness struct {
	t   *testing.T
	s   *State
	idx uint64
	at  time.Time
	log []command.Command
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, s: New(), at: t0}
	h.mustApply(&command.Init{AccountID: "acc", AccountName: "HQ", AccountKind: AccountEndCustomer, ProfileID: "prof",
		OperatorID: "op", Email: "Admin@Example.com", PasswordHash: "$2a$hash", ClusterSecret: bytes.Repeat([]byte{7}, 32)})
	return h
}

func (h *harness) apply(b command.Body) Result {
	h.t.Helper()
	h.idx++
	h.at = h.at.Add(time.Second)
	c := command.Command{Header: command.Header{RequestID: fmt.Sprintf("req-%d", h.idx), Actor: "op", At: h.at}, Body: b}
	h.log = append(h.log, c)
	res, _ := h.s.Apply(h.idx, c)
	return res
}

func (h *harness) mustApply(b command.Body) Result {
	h.t.Helper()
	res := h.apply(b)
	if res.Err != nil {
		h.t.Fatalf("%T rejected: %v", b, res.Err)
	}
	return res
}

func (h *harness) mustReject(b command.Body, code string) {
	h.t.Helper()
	before := comparable(h.s.Clone())
	res := h.apply(b)
	if res.Err == nil || res.Err.Code != code {
		h.t.Fatalf("%T: got %+v, want rejection %s", b, res.Err, code)
	}
	// A rejection changes nothing but the index, the clock and the dedup table.
	if after := comparable(h.s.Clone()); !bytes.Equal(before, after) {
		h.t.Fatalf("%T: rejected command changed state", b)
	}
}

func comparable(s *State) []byte {
	s.Index, s.Clock = 0, time.Time{}
	s.Dedup, s.DedupRetry, s.DedupIdempotent = Table[DedupEntry]{}, List[string]{}, List[string]{}
	b, _ := json.Marshal(s)
	return b
}

func encode(t *testing.T, s *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestState_Init(t *testing.T) {
	h := newHarness(t)
	s := h.s
	if !s.Initialized || len(s.ClusterSecret) != 32 {
		t.Fatal("not initialized")
	}
	o, ok := s.OperatorByEmail("admin@EXAMPLE.com")
	if !ok || o.Status != OperatorActivated || o.ProfileID != "prof" || o.Email != "admin@example.com" {
		t.Fatalf("operator: %+v %v", o, ok)
	}
	p := s.Profiles.At("prof")
	if p.Name != AdministratorProfile {
		t.Fatalf("profile name %q", p.Name)
	}
	for _, area := range Areas {
		for _, r := range Rights {
			if !p.Allows(area, r) {
				t.Errorf("administrator lacks %s on %s", r, area)
			}
		}
	}
	if s.Accounts.At("acc").Kind != AccountEndCustomer {
		t.Fatalf("account: %+v", s.Accounts.At("acc"))
	}
	h.mustReject(&command.Init{AccountID: "b", AccountName: "x", AccountKind: AccountReseller, ProfileID: "p2", OperatorID: "o2",
		Email: "b@x", PasswordHash: "h", ClusterSecret: bytes.Repeat([]byte{1}, 32)}, "already_initialized")
}

func TestState_CreateSession(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&command.CreateSession{SessionID: "s1", TokenHash: "th1", OperatorID: "op", ExpiresAt: h.at.Add(time.Hour)})
	if _, ok := h.s.SessionByTokenHash("th1", h.at); !ok {
		t.Fatal("session not found")
	}
	if _, ok := h.s.SessionByTokenHash("th1", h.at.Add(2*time.Hour)); ok {
		t.Fatal("expired session still valid")
	}
	h.mustReject(&command.CreateSession{SessionID: "s2", TokenHash: "th2", OperatorID: "nobody", ExpiresAt: h.at.Add(time.Hour)}, "operator_not_found")
	h.mustReject(&command.CreateSession{SessionID: "s3", TokenHash: "th3", OperatorID: "op", ExpiresAt: h.at}, "invalid_command")

	// An expired session leaves with the next login.
	h.at = h.at.Add(2 * time.Hour)
	h.mustApply(&command.CreateSession{SessionID: "s4", TokenHash: "th4", OperatorID: "op", ExpiresAt: h.at.Add(time.Hour)})
	if _, ok := h.s.Sessions.Get("th1"); ok {
		t.Fatal("expired session was not pruned")
	}
}

func TestState_DeleteSession(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&command.CreateSession{SessionID: "s1", TokenHash: "th1", OperatorID: "op", ExpiresAt: h.at.Add(time.Hour)})
	h.mustApply(&command.DeleteSession{TokenHash: "th1"})
	if _, ok := h.s.SessionByTokenHash("th1", h.at); ok {
		t.Fatal("session survived logout")
	}
	h.mustReject(&command.DeleteSession{TokenHash: "th1"}, "session_not_found")
}

func TestState_CreateSite(t *testing.T) {
	h := newHarness(t)
	res := h.mustApply(&command.CreateSite{ID: "s1", AccountID: "acc", Name: "  London "})
	var site Site
	if err := json.Unmarshal(res.Value, &site); err != nil {
		t.Fatal(err)
	}
	want := Site{ID: "s1", AccountID: "acc", Name: "London", CreatedAt: h.at, CardCost: 5,
		ActivationTTL: 7 * 24 * time.Hour, OfflineGrace: 24 * time.Hour, OfflinePolicy: OfflineDeny, TimeZone: "UTC"}
	if !reflect.DeepEqual(site, want) || !reflect.DeepEqual(h.s.Sites.At("s1"), want) {
		t.Fatalf("site\n got %+v\nwant %+v", site, want)
	}
	h.mustReject(&command.CreateSite{ID: "s2", AccountID: "acc", Name: "LONDON"}, "duplicate_name")
	h.mustReject(&command.CreateSite{ID: "s1", AccountID: "acc", Name: "Paris"}, "duplicate_id")
	h.mustReject(&command.CreateSite{ID: "s3", AccountID: "nope", Name: "Paris"}, "account_not_found")
	h.mustReject(&command.CreateSite{ID: "s4", AccountID: "acc", Name: " "}, "required")
	h.mustReject(&command.CreateSite{ID: "s5", AccountID: "acc", Name: string(bytes.Repeat([]byte("x"), 101))}, "too_long")
	h.mustReject(&command.CreateSite{ID: "s6", AccountID: "acc", Name: "a\nb"}, "invalid_value")
	h.mustApply(&command.CreateSite{ID: "s7", AccountID: "acc", Name: "Annexe"})
	got := h.s.SitesOf("acc")
	if len(got) != 2 || got[0].Name != "Annexe" || got[1].Name != "London" {
		t.Fatalf("SitesOf: %+v", got)
	}
}

func TestState_DeleteSite(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"})
	h.mustReject(&command.DeleteSite{ID: "s1", AccountID: "other"}, "site_not_found")
	h.mustApply(&command.DeleteSite{ID: "s1", AccountID: "acc"})
	if _, ok := h.s.Sites.Get("s1"); ok {
		t.Fatal("site still there")
	}
	h.mustReject(&command.DeleteSite{ID: "s1", AccountID: "acc"}, "site_not_found")
	// The name is free again.
	h.mustApply(&command.CreateSite{ID: "s2", AccountID: "acc", Name: "london"})
}

func TestState_RemoveNode(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&command.RemoveNode{NodeID: "n3", Instance: "i1"})
	if !h.s.IsRemoved("n3", "i1") {
		t.Fatal("not removed")
	}
	if h.s.IsRemoved("n3", "i2") {
		t.Fatal("a fresh data dir of the same id counts as removed")
	}
	h.mustReject(&command.RemoveNode{}, "invalid_value")
}

func TestDedupReturnsFirstAnswer(t *testing.T) {
	h := newHarness(t)
	c := command.Command{Header: command.Header{RequestID: "same", Actor: "op", At: h.at}, Body: &command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"}}
	first, ch1 := h.s.Apply(10, c)
	c.Body = &command.CreateSite{ID: "s2", AccountID: "acc", Name: "Paris"}
	again, ch2 := h.s.Apply(11, c)
	// A plain request id keeps the digest of its answer, not the value
	// (the FSM gives the value back: TestRetryGetsItsFirstAnswer).
	if again.Replayed != 10 || again.Value != nil || again.Sum != SumOf(first.Value) || again.Sum == "" || h.s.Sites.Len() != 1 {
		t.Fatalf("retry: %+v, want replayed 10 with the digest of %s; %d sites", again, first.Value, h.s.Sites.Len())
	}
	if len(ch1) != 1 || len(ch2) != 0 {
		t.Fatalf("changes %v %v", ch1, ch2)
	}
	// An Idempotency-Key keeps the whole first answer (SPEC 3.1).
	k := command.Command{Header: command.Header{RequestID: "key", Idempotent: true, Actor: "op", At: h.at}, Body: &command.CreateSite{ID: "s3", AccountID: "acc", Name: "Rome"}}
	first, _ = h.s.Apply(12, k)
	k.Body = &command.CreateSite{ID: "s4", AccountID: "acc", Name: "Oslo"}
	again, _ = h.s.Apply(13, k)
	if !bytes.Equal(first.Value, again.Value) || first.Value == nil || again.Replayed != 0 || h.s.Sites.Len() != 2 {
		t.Fatalf("idempotent retry: %+v, want %s; %d sites", again, first.Value, h.s.Sites.Len())
	}
}

func TestDedupExpires(t *testing.T) {
	h := newHarness(t)
	h.s.Apply(10, command.Command{Header: command.Header{RequestID: "plain", At: h.at}, Body: &command.DeleteSession{TokenHash: "x"}})
	h.s.Apply(11, command.Command{Header: command.Header{RequestID: "idem", At: h.at, Idempotent: true}, Body: &command.DeleteSession{TokenHash: "y"}})
	later := h.at.Add(DedupRetryWindow + time.Second)
	h.s.Apply(12, command.Command{Header: command.Header{RequestID: "tick1", At: later}, Body: &command.DeleteSession{TokenHash: "z"}})
	if _, ok := h.s.DedupResult("plain"); ok {
		t.Error("plain request id kept past its window")
	}
	if _, ok := h.s.DedupResult("idem"); !ok {
		t.Error("idempotency key dropped before 24 h")
	}
	h.s.Apply(13, command.Command{Header: command.Header{RequestID: "tick2", At: h.at.Add(DedupIdempotencyWindow + time.Second)}, Body: &command.DeleteSession{TokenHash: "z"}})
	if _, ok := h.s.DedupResult("idem"); ok {
		t.Error("idempotency key kept past 24 h")
	}
}

// The clock only moves forward: a command stamped earlier (another leader's
// clock) does not wind it back.
func TestClockIsMonotonic(t *testing.T) {
	h := newHarness(t)
	before := h.s.Clock
	h.s.Apply(50, command.Command{Header: command.Header{RequestID: "old", At: before.Add(-time.Hour)}, Body: &command.DeleteSession{TokenHash: "x"}})
	if !h.s.Clock.Equal(before) {
		t.Fatalf("clock moved back to %v", h.s.Clock)
	}
}

// The same log applied to two states gives identical bytes.
func TestDeterminism(t *testing.T) {
	h := newHarness(t)
	for i := range 50 {
		h.apply(&command.CreateSite{ID: fmt.Sprintf("s%d", i), AccountID: "acc", Name: fmt.Sprintf("Site %d", i%40)})
		h.apply(&command.CreateSession{SessionID: fmt.Sprint(i), TokenHash: fmt.Sprintf("t%d", i), OperatorID: "op", ExpiresAt: h.at.Add(time.Duration(i) * time.Minute)})
		if i%3 == 0 {
			h.apply(&command.DeleteSite{ID: fmt.Sprintf("s%d", i/2), AccountID: "acc"})
		}
	}
	replay := New()
	for i, c := range h.log {
		replay.Apply(uint64(i+1), c)
	}
	if !bytes.Equal(encode(t, replay), encode(t, h.s)) {
		t.Fatal("same log, different bytes")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"})
	h.mustApply(&command.CreateSession{SessionID: "x", TokenHash: "th", OperatorID: "op", ExpiresAt: h.at.Add(time.Hour)})
	h.mustApply(&command.RemoveNode{NodeID: "n9", Instance: "i"})
	b := encode(t, h.s)
	if !bytes.Equal(encode(t, h.s.Clone()), b) {
		t.Fatal("the snapshot copy encodes differently from the state")
	}
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, got), b) {
		t.Fatal("restore then encode gives other bytes")
	}
	// Derived indexes are rebuilt.
	if _, ok := got.OperatorByEmail("admin@example.com"); !ok {
		t.Fatal("email index not rebuilt")
	}
	dup := command.Command{Header: command.Header{RequestID: "dup", At: h.at}, Body: &command.CreateSite{ID: "s9", AccountID: "acc", Name: "LONDON"}}
	if res, _ := got.Clone().Apply(99, dup); res.Err == nil || res.Err.Code != "duplicate_name" {
		t.Fatalf("site name index not rebuilt: %+v", res.Err)
	}
	// The restored state goes on applying like the original.
	c := command.Command{Header: command.Header{RequestID: "next", At: h.at.Add(time.Second)}, Body: &command.CreateSite{ID: "s2", AccountID: "acc", Name: "Paris"}}
	h.s.Apply(100, c)
	got.Apply(100, c)
	if !bytes.Equal(encode(t, got), encode(t, h.s)) {
		t.Fatal("restored state diverges")
	}
	for name, bad := range map[string]string{"garbage": "{", "version": `{"lintel_state":99}` + "\n{}"} {
		if _, err := Decode(bytes.NewReader([]byte(bad))); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// Clone is an immutable copy: applying more does not change it.
func TestCloneIsImmutable(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"})
	c := h.s.Clone()
	before := encode(t, c)
	h.mustApply(&command.CreateSite{ID: "s2", AccountID: "acc", Name: "Paris"})
	h.mustApply(&command.DeleteSite{ID: "s1", AccountID: "acc"})
	if !bytes.Equal(before, encode(t, c)) {
		t.Fatal("clone changed")
	}
}

func TestApplyRefusesCommandWithoutTime(t *testing.T) {
	s := New()
	res, _ := s.Apply(1, command.Command{Header: command.Header{RequestID: "r"}, Body: &command.DeleteSession{TokenHash: "x"}})
	if res.Err == nil || res.Err.Kind != Invalid {
		t.Fatalf("got %+v", res.Err)
	}
}
