package state

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"lintel/consensus/command"
)

// applyAt applies c at the next index with the leader's stamp, as the FSM
// does with raft.Log.AppendedAt, and checks the ledger invariants.
func applyAt(h *harness, stamp time.Time, c command.Command) (Result, []Change) {
	h.t.Helper()
	h.idx++
	res, ch := h.s.ApplyAt(h.idx, stamp, c)
	if err := h.s.CheckInvariants(); err != nil {
		h.t.Fatalf("after %T: %v", c.Body, err)
	}
	return res, ch
}

func made(id, node string, at time.Time, b command.Body) command.Command {
	return command.Command{Header: command.Header{RequestID: id, Actor: "op", At: at, Node: node}, Body: b}
}

// activeCard adds an activated device card "v" with a use limit.
func activeCard(t *testing.T, r *registry) {
	t.Helper()
	r.must(&command.CreateCard{ID: "v", SiteID: "site", AccountID: "acc", Kind: KindDeviceID, MaxUses: 5,
		NewCardholder: &command.CreateCardholder{ID: "h", FirstName: "Vi", LastName: "Sitor", Email: "v@example.com"}})
	r.must(&command.ActivateCard{LinkHash: r.send("v"), DeviceKey: newPhone(t).public()})
}

// The reproduced defect: one command from a node whose clock ran 10 minutes
// ahead expired every dedup answer, and the retry of a door use counted it
// twice. Now it is refused, the clock stays on the leader's time, and the
// retry gets its first answer.
func TestSkewedNodeCannotExpireDedup(t *testing.T) {
	r := newRegistry(t, 10)
	activeCard(t, r)
	now := r.at.Add(time.Second)
	use := made("R", "n1", now, &command.RecordUse{CardID: "v", ReaderID: "front"})
	first, _ := applyAt(r.harness, now, use)
	if first.Err != nil || r.s.Cards.At("v").Uses != 1 {
		t.Fatalf("use: %+v, uses %d", first.Err, r.s.Cards.At("v").Uses)
	}

	before := comparable(r.s.Clone())
	skewed := made("S", "n2", now.Add(10*time.Minute), &command.CreateSite{ID: "s9", AccountID: "acc", Name: "Ahead"})
	res, ch := applyAt(r.harness, now.Add(time.Second), skewed)
	// Errors, not fatal: the retry below shows what a skewed clock costs.
	if res.Err == nil || res.Err.Kind != Invalid || res.Err.Code != "clock_skew" {
		t.Errorf("skewed command: %+v, want clock_skew", res.Err)
	} else {
		for _, want := range []string{"9m59s ahead", now.Add(10 * time.Minute).Format(time.RFC3339), now.Add(time.Second).Format(time.RFC3339), "node n2"} {
			if !strings.Contains(res.Err.Message, want) {
				t.Errorf("message %q does not say %q", res.Err.Message, want)
			}
		}
	}
	if len(ch) != 0 || !bytes.Equal(before, comparable(r.s.Clone())) {
		t.Error("the refused command changed the state")
	}
	if !r.s.Clock.Equal(now.Add(time.Second)) {
		t.Errorf("clock %v, want the leader's stamp %v", r.s.Clock, now.Add(time.Second))
	}
	if _, ok := r.s.DedupResult("R"); !ok {
		t.Error("the skewed command expired the dedup table")
	}

	again, ch := applyAt(r.harness, now.Add(2*time.Second), use)
	if again.Sum != SumOf(first.Value) || again.Replayed == 0 || again.Err != nil || len(ch) != 0 {
		t.Fatalf("retry: %+v %v, want the first answer's digest %s", again, ch, SumOf(first.Value))
	}
	if n := r.s.Cards.At("v").Uses; n != 1 {
		t.Fatalf("uses %d after the retry, want 1", n)
	}
	// A retry of the refused command gets its refusal back.
	if res, _ := applyAt(r.harness, now.Add(3*time.Second), skewed); res.Err == nil || res.Err.Code != "clock_skew" {
		t.Fatalf("retry of the skewed command: %+v", res.Err)
	}
}

// Up to MaxClockAhead ahead is a clock that is merely imprecise.
func TestClockAheadLimit(t *testing.T) {
	h := newHarness(t)
	stamp := h.at.Add(time.Second)
	if res, _ := applyAt(h, stamp, made("ok", "n2", stamp.Add(MaxClockAhead), &command.CreateSite{ID: "s1", AccountID: "acc", Name: "A"})); res.Err != nil {
		t.Fatalf("%v ahead refused: %v", MaxClockAhead, res.Err)
	}
	res, _ := applyAt(h, stamp, made("ko", "", stamp.Add(MaxClockAhead+time.Second), &command.CreateSite{ID: "s2", AccountID: "acc", Name: "B"}))
	if res.Err == nil || res.Err.Code != "clock_skew" || !strings.Contains(res.Err.Message, "1m1s ahead") ||
		!strings.Contains(res.Err.Message, "the node that made it") {
		t.Fatalf("%v ahead: %+v", MaxClockAhead+time.Second, res.Err)
	}
}

// Offline queues commit what happened hours ago with the time it happened:
// accepted, recorded with that time, kept in dedup from when it was applied,
// and the clock does not move back.
func TestCommandFromThePastIsAccepted(t *testing.T) {
	r := newRegistry(t, 10)
	activeCard(t, r)
	now := r.at.Add(time.Second)
	past := now.Add(-3 * time.Hour)
	if res, _ := applyAt(r.harness, now, made("offline-use", "n1", past, &command.RecordUse{CardID: "v", ReaderID: "front", Offline: true})); res.Err != nil {
		t.Fatalf("offline use: %v", res.Err)
	}
	revokedAt := past.Add(time.Minute)
	if res, _ := applyAt(r.harness, now.Add(time.Second), made("offline-revoke", "n1", revokedAt, &command.RevokeCard{ID: "v", AccountID: "acc"})); res.Err != nil {
		t.Fatalf("offline revoke: %v", res.Err)
	}
	c := r.s.Cards.At("v")
	if c.Uses != 1 || c.Status != CardPendingRevoke || c.RevokedAt == nil || !c.RevokedAt.Equal(revokedAt) {
		t.Fatalf("card %+v: want 1 use, pending revoke at %v (the command's time)", c, revokedAt)
	}
	if !r.s.Clock.Equal(now.Add(time.Second)) {
		t.Fatalf("clock %v, want %v", r.s.Clock, now.Add(time.Second))
	}
	if e := r.s.Dedup.At("offline-use"); !e.At.Equal(now) {
		t.Fatalf("dedup entry at %v, want when it was applied %v", e.At, now)
	}
	applyAt(r.harness, now.Add(DedupRetryWindow-time.Second), made("p1", "", now, &command.DeleteSession{TokenHash: "x"}))
	if _, ok := r.s.DedupResult("offline-use"); !ok {
		t.Fatal("an offline command's answer expired before its window from when it was applied")
	}
	applyAt(r.harness, now.Add(DedupRetryWindow+2*time.Second), made("p2", "", now, &command.DeleteSession{TokenHash: "x"}))
	if _, ok := r.s.DedupResult("offline-use"); ok {
		t.Fatal("kept past its window")
	}
}

// Dedup windows are measured on the stamps, whatever the commands' own times.
func TestDedupExpiresOnLeaderStamps(t *testing.T) {
	h := newHarness(t)
	t1 := h.at.Add(time.Second)
	applyAt(h, t1, made("plain", "", t1, &command.DeleteSession{TokenHash: "x"}))
	idem := made("idem", "", t1, &command.DeleteSession{TokenHash: "y"})
	idem.Idempotent = true
	applyAt(h, t1, idem)
	// The probes keep the command time at t1: only the stamps move.
	probe := func(id string, stamp time.Time) {
		applyAt(h, stamp, made(id, "", t1, &command.DeleteSession{TokenHash: "z"}))
	}
	kept := func(id string) bool { _, ok := h.s.DedupResult(id); return ok }

	probe("p1", t1.Add(DedupRetryWindow-time.Second))
	if !kept("plain") {
		t.Fatal("plain request id dropped inside its window")
	}
	probe("p2", t1.Add(DedupRetryWindow+time.Second))
	if kept("plain") {
		t.Fatal("plain request id kept past its window on the stamps")
	}
	if !kept("idem") {
		t.Fatal("idempotency key dropped before 24 h")
	}
	probe("p3", t1.Add(DedupIdempotencyWindow+time.Second))
	if kept("idem") {
		t.Fatal("idempotency key kept past 24 h on the stamps")
	}

	// A command made long ago expires nothing early, nor is it expired early.
	t2 := t1.Add(DedupIdempotencyWindow + 2*time.Second)
	applyAt(h, t2, made("recent", "", t2, &command.DeleteSession{TokenHash: "x"}))
	applyAt(h, t2.Add(time.Second), made("old", "", t2.Add(-30*time.Hour), &command.DeleteSession{TokenHash: "x"}))
	applyAt(h, t2.Add(DedupRetryWindow-time.Second), made("p4", "", t2, &command.DeleteSession{TokenHash: "z"}))
	if !kept("recent") || !kept("old") {
		t.Fatalf("recent kept %v, old kept %v; want both inside their window", kept("recent"), kept("old"))
	}
}

// The clock is the largest stamp: a new leader whose clock is a little behind
// does not wind it back, and its entries are kept from the state clock. A
// stamp decoded in another zone gives the same state as its UTC form.
func TestLeaderClockIsMonotonicAndUTC(t *testing.T) {
	h := newHarness(t)
	t1 := h.at.Add(time.Minute)
	applyAt(h, t1, made("a", "n1", t1, &command.DeleteSession{TokenHash: "x"}))
	applyAt(h, t1.Add(-5*time.Second), made("b", "n2", t1.Add(-5*time.Second), &command.DeleteSession{TokenHash: "x"}))
	if !h.s.Clock.Equal(t1) {
		t.Fatalf("clock moved back to %v", h.s.Clock)
	}
	if e := h.s.Dedup.At("b"); !e.At.Equal(t1) {
		t.Fatalf("entry of the lagging leader at %v, want the state clock %v", e.At, t1)
	}

	zone := time.FixedZone("CET", 3600)
	utc, local := New(), New()
	for i, c := range newHarness(t).log {
		utc.ApplyAt(uint64(i+1), c.At.Add(time.Second), c)
		local.ApplyAt(uint64(i+1), c.At.Add(time.Second).In(zone), c)
	}
	if local.Clock.Location() != time.UTC || !bytes.Equal(encode(t, utc), encode(t, local)) {
		t.Fatal("a stamp in another zone changed the state")
	}
}

// Expiries that guard access are judged on the leader's clock: a node whose
// clock runs behind cannot revive an expired link, invitation or arm, and
// one running ahead (inside the limit) cannot cut them short.
func TestSecurityExpiriesOnLeaderClock(t *testing.T) {
	t.Run("activation link", func(t *testing.T) {
		r := newRegistry(t, 10)
		r.newCard("c1", "1")
		r.newCard("c2", "2")
		l1, l2 := r.send("c1"), r.send("c2")
		exp := *r.s.Cards.At("c2").LinkExpires
		key := newPhone(t).public()
		// Ahead by 30 s, the leader before the expiry: still activates.
		if res, _ := applyAt(r.harness, exp.Add(-10*time.Second), made("a1", "n2", exp.Add(20*time.Second), &command.ActivateCard{LinkHash: l2, DeviceKey: key})); res.Err != nil {
			t.Fatalf("activation before the expiry on the leader's clock: %v", res.Err)
		}
		// An hour behind, the leader past the expiry: refused.
		if res, _ := applyAt(r.harness, exp.Add(time.Second), made("a2", "n3", exp.Add(-time.Hour), &command.ActivateCard{LinkHash: l1, DeviceKey: key})); res.Err == nil || res.Err.Code != "link_expired" {
			t.Fatalf("activation past the expiry on the leader's clock: %+v", res.Err)
		}
		res, _ := applyAt(r.harness, exp.Add(2*time.Second), made("e", "n3", exp.Add(-time.Hour), &command.ExpireLinks{}))
		if res.Err != nil || r.status("c1") != CardExpired || r.ledger().Reserved != 0 {
			t.Fatalf("expire links: %+v, c1 %s, %+v", res.Err, r.status("c1"), r.ledger())
		}
		// A send whose link is already dead on the leader's clock is refused.
		res, _ = applyAt(r.harness, exp.Add(3*time.Second), made("s", "n3", exp.Add(-2*time.Hour), &command.SendCard{ID: "c1", AccountID: "acc",
			LinkHash: "late", LinkExpires: exp.Add(-time.Hour), Message: command.Message{ID: "m-late", To: "c1@example.com", Subject: "s", Body: "b"}}))
		if res.Err == nil || res.Err.Code != "invalid_command" {
			t.Fatalf("send with a dead link: %+v", res.Err)
		}
	})
	t.Run("invitation", func(t *testing.T) {
		r := newRegistry(t, 0)
		now := r.at.Add(time.Second)
		exp := now.Add(time.Hour)
		if res, _ := applyAt(r.harness, now, made("o", "n1", now, &command.CreateOperator{ID: "james", AccountID: "acc", FirstName: "James", LastName: "Daniel",
			Email: "james@example.com", ProfileID: "prof", InviteHash: "inv", InviteExpires: exp})); res.Err != nil {
			t.Fatal(res.Err)
		}
		res, _ := applyAt(r.harness, exp.Add(time.Second), made("accept", "n3", exp.Add(-10*time.Minute), &command.AcceptInvitation{InviteHash: "inv", PasswordHash: "h"}))
		if res.Err == nil || res.Err.Code != "invitation_expired" {
			t.Fatalf("accepting past the expiry on the leader's clock: %+v", res.Err)
		}
		res, _ = applyAt(r.harness, exp.Add(2*time.Second), made("o2", "n3", exp.Add(-2*time.Hour), &command.CreateOperator{ID: "ann", AccountID: "acc", FirstName: "Ann", LastName: "Lee",
			Email: "ann@example.com", ProfileID: "prof", InviteHash: "inv2", InviteExpires: exp.Add(-time.Hour)}))
		if res.Err == nil {
			t.Fatal("an invitation already expired on the leader's clock was created")
		}
	})
	t.Run("enrollment arm", func(t *testing.T) {
		r := newRegistry(t, 10)
		r.must(&command.CreateReader{ID: "front", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Front door", ReaderConfig: "London"})
		r.must(&command.CreateCardholder{ID: "h", AccountID: "acc", FirstName: "Ada", LastName: "King", Email: "ada@example.com"})
		now := r.at.Add(time.Second)
		until := now.Add(time.Minute)
		if res, _ := applyAt(r.harness, now, made("arm", "n1", now, &command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "h", Until: until})); res.Err != nil {
			t.Fatal(res.Err)
		}
		p := newPhone(t)
		nonce := make([]byte, 16)
		enroll := &command.EnrollCard{ReaderID: "front", CardID: "c1", DeviceKey: p.public(), Nonce: nonce,
			Signature: p.sign(command.EnrollmentMessage(nonce, "front", p.public()))}
		res, _ := applyAt(r.harness, until.Add(time.Second), made("enroll", "n1", now, enroll))
		if res.Err == nil || res.Err.Code != "not_armed" {
			t.Fatalf("enrolling after the arm ended on the leader's clock: %+v", res.Err)
		}
		// Arming from a node so far behind that the arm would already be over.
		res, _ = applyAt(r.harness, until.Add(2*time.Second), made("arm2", "n3", now, &command.ArmEnrollment{ReaderID: "front", AccountID: "acc", CardholderID: "h", Until: until}))
		if res.Err == nil || res.Err.Code != "invalid_value" {
			t.Fatalf("arm already over on the leader's clock: %+v", res.Err)
		}
	})
}

// Two states applying the same stamped log, refusals and retries included,
// encode to the same bytes, restore to them, and have the last stamp as clock.
func TestDeterminismWithStamps(t *testing.T) {
	r := newRegistry(t, 10)
	activeCard(t, r)
	setup := r.log
	now := r.at.Add(time.Second)
	type entry struct {
		stamp time.Time
		c     command.Command
	}
	use := made("use", "n1", now, &command.RecordUse{CardID: "v", ReaderID: "front"})
	log := []entry{
		{now, use},
		{now.Add(time.Second), made("skew", "n2", now.Add(10*time.Minute), &command.CreateSite{ID: "s9", AccountID: "acc", Name: "Ahead"})},
		{now.Add(2 * time.Second), use},
		{now.Add(3 * time.Second), made("offline", "n1", now.Add(-3*time.Hour), &command.RecordUse{CardID: "v", ReaderID: "front", Offline: true})},
		{now.Add(time.Second), made("lagging", "n3", now.Add(time.Second), &command.CreateSite{ID: "s8", AccountID: "acc", Name: "Behind"})},
		{now.Add(DedupRetryWindow + 4*time.Second), made("late", "n1", now, &command.CreateSession{SessionID: "x", TokenHash: "th", OperatorID: "op", ExpiresAt: now.Add(time.Hour)})},
		{time.Time{}, made("unstamped", "n1", now.Add(DedupRetryWindow+5*time.Second), &command.RecordUse{CardID: "v", ReaderID: "front"})},
	}
	build := func() *State {
		s := New()
		for i, c := range setup {
			s.Apply(uint64(i+1), c)
		}
		for i, e := range log {
			s.ApplyAt(uint64(len(setup)+i+1), e.stamp, e.c)
		}
		return s
	}
	a, b := build(), build()
	want := encode(t, a)
	if !bytes.Equal(want, encode(t, b)) {
		t.Fatal("same stamped log, different bytes")
	}
	var sn bytes.Buffer
	if err := a.Snapshot().Encode(&sn); err != nil || !bytes.Equal(want, sn.Bytes()) {
		t.Fatalf("the snapshot copy encodes differently (%v)", err)
	}
	got, err := Decode(bytes.NewReader(want))
	if err != nil || !bytes.Equal(want, encode(t, got)) {
		t.Fatalf("restore: %v", err)
	}
	if last := now.Add(DedupRetryWindow + 5*time.Second); !a.Clock.Equal(last) {
		t.Fatalf("clock %v, want %v", a.Clock, last)
	}
	if u := a.Cards.At("v").Uses; u != 3 {
		t.Fatalf("uses %d, want 3 (one online, its retry not counted, one offline, one unstamped)", u)
	}
	if _, ok := a.Sites.Get("s9"); ok {
		t.Fatal("the skewed command was applied")
	}
}
