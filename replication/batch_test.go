package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// slowLeader applies after a pause, as a leader waiting for its fsync
// does, and answers each write with an index of its own.
type slowLeader struct {
	mu      sync.Mutex
	applied map[string]uint64
	next    uint64
	refuse  string // a write holding this answers not leader
}

func (l *slowLeader) IsLeader() bool                            { return true }
func (l *slowLeader) Leader() (string, string)                  { return "leader", "" }
func (l *slowLeader) ReadIndex(context.Context) (uint64, error) { return 1, nil }
func (l *slowLeader) TermOf(uint64) uint64                      { return 3 }
func (l *slowLeader) ApplyEncoded(_ context.Context, b []byte) (uint64, state.Result, error) {
	time.Sleep(2 * time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refuse != "" && bytes.Contains(b, []byte(l.refuse)) {
		return 0, state.Result{}, errors.New("not_leader stand-in") // any error: outcome unknown
	}
	l.next++
	l.applied[string(b)] = l.next
	return l.next, state.Result{Value: []byte(fmt.Sprintf("%q", b[2:]))}, nil
}

// followerStub is a follower that knows the leader.
type followerStub struct{}

func (followerStub) IsLeader() bool           { return false }
func (followerStub) Leader() (string, string) { return "leader", "" }
func (followerStub) ApplyEncoded(context.Context, []byte) (uint64, state.Result, error) {
	panic("a follower applies nothing itself")
}
func (followerStub) ReadIndex(context.Context) (uint64, error) { panic("not used") }
func (followerStub) TermOf(uint64) uint64                      { return 0 }

// counting serves h and counts the calls per path.
type counting struct {
	h     http.Handler
	calls sync.Map // path → *atomic.Int64
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := c.calls.LoadOrStore(r.URL.Path, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	c.h.ServeHTTP(w, r)
}

func (c *counting) count(path string) int64 {
	n, ok := c.calls.Load(path)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// forwarding sets up a leader serving h and a follower forwarding to it.
func forwarding(t *testing.T, h func(*Forwarder) http.Handler) (*Forwarder, *slowLeader, *counting) {
	t.Helper()
	secret := bytes.Repeat([]byte{5}, 32)
	l := &slowLeader{applied: map[string]uint64{}}
	lf := &Forwarder{NodeID: "leader", Local: l, Secret: func() []byte { return secret }}
	srv := &counting{h: h(lf)}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	m, err := StartMembership(MembershipConfig{Meta: Meta{ID: "leader", Instance: "i", Raft: "127.0.0.1:1", HTTP: strings.TrimPrefix(hs.URL, "http://")},
		Bind: "127.0.0.1:0", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	f := &Forwarder{NodeID: "follower", Local: followerStub{}, Members: m, Secret: func() []byte { return secret },
		Client: &http.Client{Timeout: 5 * time.Second}}
	return f, l, srv
}

func write(i int) []byte {
	b, err := command.Encode(command.Command{Header: command.Header{RequestID: fmt.Sprintf("req-%03d", i), At: time.Unix(1, 0)},
		Body: &command.DeleteSession{TokenHash: fmt.Sprintf("t%03d", i)}})
	if err != nil {
		panic(err)
	}
	return b
}

// Writes that wait on a follower share calls to the leader, and each gets
// its own answer.
func TestForwardedWritesShareCalls(t *testing.T) {
	f, l, srv := forwarding(t, (*Forwarder).Handler)
	const n = 60
	idx := make([]uint64, n)
	vals := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, _, res, err := f.Apply(ctx, write(i))
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			idx[i], vals[i] = got, string(res.Value)
		})
	}
	wg.Wait()
	for i := range n {
		if want := l.applied[string(write(i))]; idx[i] != want || want == 0 {
			t.Errorf("write %d answered index %d, the leader applied it at %d", i, idx[i], want)
		}
		if !strings.Contains(vals[i], fmt.Sprintf("req-%03d", i)) {
			t.Errorf("write %d got another write's answer: %s", i, vals[i])
		}
	}
	calls := srv.count(PathApplyBatch)
	if calls == 0 || calls > n/3 {
		t.Errorf("%d writes took %d calls to the leader; want them to share calls", n, calls)
	}
	if single := srv.count(PathApply); single != 0 {
		t.Errorf("%d single calls to a leader that takes batches", single)
	}
}

// A leader of an older build has no batch path: each write goes on its own call.
func TestForwardingToAnOlderLeader(t *testing.T) {
	old := func(lf *Forwarder) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("POST "+PathApply, lf.Handler())
		return mux
	}
	f, l, srv := forwarding(t, old)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, _, _, err := f.Apply(ctx, write(i)); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(l.applied) != 10 || srv.count(PathApply) < 10 {
		t.Fatalf("applied %d of 10, in %d single calls", len(l.applied), srv.count(PathApply))
	}
}

// One write's failure is that write's: the others in its call succeed.
func TestBatchAnswersEachWrite(t *testing.T) {
	f, l, _ := forwarding(t, (*Forwarder).Handler)
	l.refuse = "req-007"
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, _, _, errs[i] = f.Apply(ctx, write(i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i == 7 && err == nil:
			t.Error("the refused write succeeded")
		case i != 7 && err != nil:
			t.Errorf("write %d failed beside the refused one: %v", i, err)
		}
	}
}

// A write whose caller gives up while it waits for a call is never sent.
func TestWriteGivenUpBeforeSendingIsNotSent(t *testing.T) {
	f, l, _ := forwarding(t, (*Forwarder).Handler)
	f.batch.mu.Lock()
	f.batch.sending = batchInFlight // every sender busy: nothing takes the write
	f.batch.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { var a applyAnswer; done <- f.forward(ctx, write(1), &a) }()
	if err := <-done; !errors.Is(err, errRetry) {
		t.Fatalf("gave up while queued: %v, want errRetry (never sent)", err)
	}
	f.batch.mu.Lock()
	left := len(f.batch.queue)
	f.batch.mu.Unlock()
	if left != 0 || len(l.applied) != 0 {
		t.Fatalf("queue holds %d, leader applied %d", left, len(l.applied))
	}
}

// Malformed or oversized batches are refused whole, before anything applies.
func TestBatchAbuse(t *testing.T) {
	secret := bytes.Repeat([]byte{9}, 32)
	stub := &leaderStub{}
	f := &Forwarder{NodeID: "leader", Local: stub, Secret: func() []byte { return secret }}
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	frame := func(items ...[]byte) []byte {
		var b []byte
		for _, it := range items {
			b = binary.AppendUvarint(b, uint64(len(it)))
			b = append(b, it...)
		}
		return b
	}
	good := write(1)
	var many [][]byte
	for i := range batchMax + 1 {
		many = append(many, write(i))
	}
	cases := map[string]struct {
		body []byte
		want int
	}{
		"empty":             {nil, http.StatusBadRequest},
		"length past end":   {append(binary.AppendUvarint(nil, 1<<20), good...), http.StatusBadRequest},
		"huge length":       {append(binary.AppendUvarint(nil, 1<<62), good...), http.StatusBadRequest},
		"truncated varint":  {[]byte{0x80}, http.StatusBadRequest},
		"too many writes":   {frame(many...), http.StatusBadRequest},
		"over the size cap": {bytes.Repeat([]byte{1}, batchBodyMax+1), http.StatusRequestEntityTooLarge},
	}
	for name, c := range cases {
		req, _ := http.NewRequest("POST", srv.URL+PathApplyBatch, bytes.NewReader(c.body))
		sign(req, secret, "n2", PathApplyBatch, c.body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, c.want)
		}
	}
	// Unsigned, or signed for the single path: refused.
	body := frame(good)
	for name, s := range map[string]func(*http.Request){
		"unsigned":    func(*http.Request) {},
		"single path": func(r *http.Request) { sign(r, secret, "n2", PathApply, body) },
	} {
		req, _ := http.NewRequest("POST", srv.URL+PathApplyBatch, bytes.NewReader(body))
		s(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, resp.StatusCode)
		}
	}
	// A write that does not decode is refused on its own; the others apply.
	req, _ := http.NewRequest("POST", srv.URL+PathApplyBatch, bytes.NewReader(frame(good, []byte{0xff, 1, '{'})))
	sign(req, secret, "n2", PathApplyBatch, frame(good, []byte{0xff, 1, '{'}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out batchAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Answers) != 2 {
		t.Fatalf("mixed batch: %v %+v", err, out)
	}
	if out.Answers[0].Status != http.StatusOK || out.Answers[1].Status != http.StatusBadRequest {
		t.Fatalf("mixed batch answers: %+v", out.Answers)
	}
	if len(stub.applied) != 1 {
		t.Fatalf("applied %d writes, want only the good one", len(stub.applied))
	}
}
