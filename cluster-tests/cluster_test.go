package clustertests

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestThreeNodesFormCluster(t *testing.T) {
	c := startCluster(t, 3)
	leader, err := c.checkFormed(c.nodes, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader: %s", leader)
	// Every node describes every other with the addresses it was started with.
	for _, n := range c.nodes {
		v, err := c.view(n)
		if err != nil {
			t.Fatal(err)
		}
		if v.Term == 0 {
			t.Errorf("on %s: term 0", n)
		}
		for _, x := range v.Nodes {
			want := c.byID(x.ID)
			if x.HTTPAddr != want.http || x.RaftAddr != want.raft || x.GossipAddr != want.gossip || x.Building != want.building {
				t.Errorf("on %s: %s is %+v, want http %s raft %s gossip %s building %q", n, x.ID, x, want.http, want.raft, want.gossip, want.building)
			}
			if x.ID != leader && x.RaftState != "follower" {
				t.Errorf("on %s: %s has raft_state %q, want follower", n, x.ID, x.RaftState)
			}
			if x.AppliedIndex == 0 || x.LastContact == nil {
				t.Errorf("on %s: %s has applied_index %d, last_contact %v", n, x.ID, x.AppliedIndex, x.LastContact)
			}
		}
	}
}

func TestWriteThroughFollowerReadEverywhere(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader(10 * time.Second)
	f := c.followers(leader)[0]
	fBefore, err := c.metric(f, "lintel_forwarded_writes_total")
	if err != nil {
		t.Fatal(err)
	}
	lBefore, err := c.metric(leader, "lintel_forwarded_writes_total")
	if err != nil {
		t.Fatal(err)
	}

	s := c.mustCreateSite(f, "Written through a follower")

	// A 2xx write is applied on the node that answered: a local read there sees it at once.
	c.expect(f, 200, "GET", "/api/v1/sites/"+s.ID, nil)
	for _, n := range c.nodes {
		var got site
		if err := c.expect(n, 200, "GET", "/api/v1/sites/"+s.ID+"?consistency=strong", nil).decode(&got); err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Errorf("on %s: got %+v, want %+v", n, got, s)
		}
	}
	fAfter, err := c.metric(f, "lintel_forwarded_writes_total")
	if err != nil {
		t.Fatal(err)
	}
	if fAfter < fBefore+1 {
		t.Errorf("%s lintel_forwarded_writes_total went from %v to %v; the write went through it", f, fBefore, fAfter)
	}
	lAfter, err := c.metric(leader, "lintel_forwarded_writes_total")
	if err != nil {
		t.Fatal(err)
	}
	if lAfter != lBefore {
		t.Errorf("leader %s lintel_forwarded_writes_total went from %v to %v; a leader applies, it does not forward", leader, lBefore, lAfter)
	}
}

func TestLeaderKilledFollowerAcceptsWrites(t *testing.T) {
	c := startCluster(t, 3)
	c.waitPeersSaved(15 * time.Second)
	leader := c.leader(10 * time.Second)
	want := map[string]string{}
	for i := range 5 {
		s := c.mustCreateSite(c.nodes[i%3], fmt.Sprintf("before-kill-%d", i))
		want[s.ID] = s.Name
	}
	survivors := c.followers(leader)

	leader.kill()
	killed := time.Now()
	s, at, err := c.writeUntilAccepted(survivors[0], "first-after-kill", 10*time.Second, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	took := at.Sub(killed)
	t.Logf("leader %s killed: a write through %s was accepted after %v", leader, survivors[0], took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("writes accepted again after %v, want at most 5s (SPEC target 1.5s)", took)
	}
	want[s.ID] = s.Name
	c.leader(10 * time.Second) // a survivor, agreed on by its own view
	for i := range 20 {
		s := c.mustCreateSite(survivors[i%2], fmt.Sprintf("while-down-%d", i))
		want[s.ID] = s.Name
	}

	// Back with its data dir and without --join: it finds the others itself.
	leader.start("")
	c.waitReady(leader, 30*time.Second)
	// Ready means it applied what the leader had committed, so local reads see it all.
	for id, name := range want {
		var got site
		r, err := c.do(leader, "GET", "/api/v1/sites/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != 200 || r.decode(&got) != nil || got.Name != name {
			t.Errorf("local read of %s (%s) on %s right after /readyz said ready: %s", id, name, leader, r)
		}
	}
	have, err := c.sites(leader, true)
	if err != nil {
		t.Fatal(err)
	}
	if m := missing(want, have); len(m) > 0 {
		t.Errorf("strong list on the restarted %s lacks %v", leader, m)
	}
	c.waitFormed(c.nodes, 3, 30*time.Second)
	// And it takes writes again.
	c.mustCreateSite(leader, "through-the-restarted-node")
}

func TestSigtermLosesNothing(t *testing.T) {
	c := startCluster(t, 3)
	c.waitPeersSaved(15 * time.Second)
	leader := c.leader(10 * time.Second)
	want := map[string]string{}
	for i := range 60 {
		s := c.mustCreateSite(c.nodes[i%3], fmt.Sprintf("acked-%d", i))
		want[s.ID] = s.Name
	}

	// Writes keep flowing through a follower while the leader stops: every
	// one acknowledged must survive.
	f := c.followers(leader)[0]
	var mu sync.Mutex
	acked, failed := 0, 0
	count := func() int { mu.Lock(); defer mu.Unlock(); return acked }
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := c.createSite(f, fmt.Sprintf("during-stop-%d", i), "")
			var s site
			mu.Lock()
			if err == nil && r.status == 201 && r.decode(&s) == nil {
				want[s.ID] = s.Name
				acked++
			} else {
				failed++
			}
			mu.Unlock()
		}
	}()
	eventually(t, 10*time.Second, "writes through "+f.id, func() error {
		if n := count(); n < 10 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})

	took, code, err := leader.term(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s stopped after SIGTERM in %v with exit code %d", leader, took.Round(time.Millisecond), code)
	if took > 5*time.Second {
		t.Errorf("SIGTERM: stopped after %v, want within 5s", took)
	}
	if code != 0 {
		t.Errorf("SIGTERM: exit code %d, want 0", code)
	}
	c.leader(10 * time.Second)
	after := count()
	eventually(t, 10*time.Second, "writes through "+f.id+" after the stop", func() error {
		if n := count(); n < after+10 {
			return fmt.Errorf("%d acknowledged since the stop", n-after)
		}
		return nil
	})
	close(stop)
	<-done
	t.Logf("through %s while the leader stopped: %d writes acknowledged, %d refused", f, acked, failed)

	leader.start("")
	c.waitReady(leader, 30*time.Second)
	local, err := c.sites(leader, false)
	if err != nil {
		t.Fatal(err)
	}
	if m := missing(want, local); len(m) > 0 {
		t.Errorf("local list on %s right after /readyz said ready lacks %d acknowledged sites: %v", leader, len(m), m)
	}
	for _, n := range c.nodes {
		have, err := c.sites(n, true)
		if err != nil {
			t.Fatal(err)
		}
		if m := missing(want, have); len(m) > 0 {
			t.Errorf("on %s %d acknowledged sites are missing: %v", n, len(m), m)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader(10 * time.Second)
	fs := c.followers(leader)
	const key = "idem-0f3a"
	const name = "Idempotent site"

	var first site
	r1, err := c.createSite(fs[0], name, key)
	if err != nil {
		t.Fatal(err)
	}
	if r1.status != 201 || r1.decode(&first) != nil {
		t.Fatalf("first POST: %s", r1)
	}
	// The same key through every other node returns the first answer.
	for _, n := range []*node{fs[1], leader, fs[0]} {
		var again site
		r, err := c.createSite(n, name, key)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != r1.status || r.decode(&again) != nil || again.ID != first.ID {
			t.Errorf("same Idempotency-Key through %s: got %s, want %d with id %s", n, r, r1.status, first.ID)
		}
	}
	// The key names the request: a different body under it applies nothing.
	r, err := c.createSite(fs[1], "Another name under the same key", key)
	if err != nil {
		t.Fatal(err)
	}
	var other site
	if r.decode(&other) != nil || other.ID != first.ID {
		t.Errorf("same key, other body: got %s, want the first answer (id %s)", r, first.ID)
	}
	// Under another key the same name is a new request, and a duplicate.
	r, err = c.createSite(fs[0], name, "another-key")
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 409 || r.errCode() != "duplicate_name" {
		t.Errorf("same name, new key: got %s, want 409 duplicate_name", r)
	}

	have, err := c.sites(leader, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 1 || have[first.ID] != name {
		t.Errorf("sites after the retries: %v, want only %s (%s)", have, first.ID, name)
	}
}

func TestNoQuorumAnswers503(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader(10 * time.Second)
	s := c.mustCreateSite(leader, "Before the outage")
	// The leader is the survivor: it must step down, not keep accepting.
	for _, f := range c.followers(leader) {
		f.kill()
	}

	check503 := func(what string, codes ...string) {
		t.Helper()
		start := time.Now()
		r, err := c.createSite(leader, what, "")
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v after %v", what, err, took)
		}
		t.Logf("%s: %s after %v", what, r, took.Round(time.Millisecond))
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("%s: got %s, want 503", what, r)
		}
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After header", what)
		}
		found := false
		for _, code := range codes {
			found = found || r.errCode() == code
		}
		if !found {
			t.Errorf("%s: error code %q, want one of %v", what, r.errCode(), codes)
		}
		if took > 8*time.Second {
			t.Errorf("%s: the answer took %v, want a prompt 503", what, took)
		}
	}
	// At once, the survivor may still believe it leads: the outcome is unknown or refused.
	check503("write right after the kill", "no_quorum", "unknown_outcome")

	eventually(t, 10*time.Second, "survivor notices it has no leader", func() error {
		r, err := c.do(leader, "GET", "/readyz", nil)
		if err != nil {
			return err
		}
		if r.status != 503 {
			return fmt.Errorf("/readyz: %s", r)
		}
		return nil
	})
	check503("write without quorum", "no_quorum")

	// Reads are served from the local replica.
	var got site
	if err := c.expect(leader, 200, "GET", "/api/v1/sites/"+s.ID, nil).decode(&got); err != nil || got != s {
		t.Errorf("local read without quorum: %+v, %v", got, err)
	}
	have, err := c.sites(leader, false)
	if err != nil {
		t.Fatal(err)
	}
	if have[s.ID] != s.Name {
		t.Errorf("local list without quorum lacks %s: %v", s.ID, have)
	}
	// A strong read cannot be served without a leader.
	r := c.expect(leader, 503, "GET", "/api/v1/sites/"+s.ID+"?consistency=strong", nil)
	if r.header.Get("Retry-After") == "" || r.errCode() == "" {
		t.Errorf("strong read without quorum: %s, Retry-After %q", r, r.header.Get("Retry-After"))
	}
}

func TestRemoveNode(t *testing.T) {
	c := startCluster(t, 3)
	c.waitPeersSaved(15 * time.Second)
	leader := c.leader(10 * time.Second)
	fs := c.followers(leader)
	victim, other := fs[0], fs[1]
	if _, code, err := victim.term(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop %s: exit code %d, %v", victim, code, err)
	}

	c.expect(other, 404, "DELETE", "/api/v1/cluster/nodes/no-such-node", nil)
	// Through the follower: the removal is a write like any other.
	c.expect(other, 204, "DELETE", "/api/v1/cluster/nodes/"+victim.id, nil)

	rest := []*node{leader, other}
	eventually(t, 15*time.Second, "cluster view without "+victim.id, func() error {
		for _, n := range rest {
			v, err := c.view(n)
			if err != nil {
				return err
			}
			if x, ok := v.node(victim.id); ok {
				return fmt.Errorf("on %s: %s still listed: %+v", n, victim, x)
			}
			if len(v.Nodes) != 2 || v.Leader == "" {
				return fmt.Errorf("on %s: %+v", n, v)
			}
		}
		return nil
	})
	for i, n := range rest {
		c.mustCreateSite(n, fmt.Sprintf("after-removal-%d", i))
	}

	// The removed data dir coming back does not make it a member again.
	victim.start("")
	c.waitHealthy(victim, 20*time.Second)
	watchUntil := time.Now().Add(4 * time.Second)
	for time.Now().Before(watchUntil) {
		for _, n := range rest {
			v, err := c.view(n)
			if err != nil {
				t.Fatal(err)
			}
			if x, ok := v.node(victim.id); ok {
				t.Fatalf("on %s: the removed %s is back: %+v", n, victim, x)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.mustCreateSite(other, "after-the-removed-node-came-back")
}

func TestBadFlagsAndIdentity(t *testing.T) {
	code, _, stderr := runLintel(t, 20*time.Second, "serve", "--nope")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 2 || len(lines) != 1 || !strings.Contains(stderr, "nope") {
		t.Errorf("serve --nope: exit %d, stderr %q; want exit 2 and one line naming the flag", code, stderr)
	}

	dir := t.TempDir()
	code, _, stderr = runLintel(t, 20*time.Second, "serve", "--data-dir", dir, "--http", "notanaddress")
	lines = strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 2 || len(lines) != 1 || !strings.Contains(stderr, "--http") {
		t.Errorf("serve --http notanaddress: exit %d, stderr %q; want exit 2 and one line naming --http", code, stderr)
	}

	c := newCluster(t, 1)
	n := c.nodes[0]
	n.id = "ident-alpha"
	n.start("")
	c.waitReady(n, 20*time.Second)
	c.login(n, 20*time.Second)
	if _, code, err := n.term(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop: exit code %d, %v", code, err)
	}
	args := n.args("")
	for i := range args {
		if args[i] == "--node-id" {
			args[i+1] = "ident-beta"
		}
	}
	code, _, stderr = runLintel(t, 20*time.Second, args...)
	if code == 0 || code == -1 || !strings.Contains(stderr, "ident-alpha") || !strings.Contains(stderr, "ident-beta") {
		t.Errorf("restart with another --node-id: exit %d, stderr %q; want a failure naming both ids", code, stderr)
	}
	// The refusal changed nothing: the data dir still starts as ident-alpha.
	n.start("")
	c.waitReady(n, 20*time.Second)
}

func TestSnapshotCatchUp(t *testing.T) {
	c := startCluster(t, 3)
	c.waitPeersSaved(15 * time.Second)
	leader := c.leader(10 * time.Second)
	fs := c.followers(leader)
	behind, other := fs[0], fs[1]

	behind.kill()
	want := map[string]string{}
	for i := range 300 {
		s := c.mustCreateSite([]*node{leader, other}[i%2], fmt.Sprintf("catch-up-%03d", i))
		want[s.ID] = s.Name
	}
	behind.start("")
	c.checkCaughtUp(behind, leader, want, 30*time.Second)

	if testing.Short() {
		return
	}
	// Far behind: more entries than SnapshotThreshold (16384), written by
	// concurrent clients.
	behind.kill()
	const total, clients = 17000, 32
	start := time.Now()
	more, err := c.writeConcurrently(leader, total, clients, "far-behind")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sites written by %d clients in %v", total, clients, time.Since(start).Round(time.Millisecond))
	for id, name := range more {
		want[id] = name
	}
	if os.Getenv("LINTEL_SNAPSHOT_WAIT") != "" {
		// The leader snapshots on its own timer (raft's SnapshotInterval,
		// 2-4 minutes); waiting for it makes the follower install it.
		eventually(t, 5*time.Minute, leader.id+" has a snapshot", func() error {
			return hasSnapshot(leader.dir)
		})
	}
	behind.start("")
	c.checkCaughtUp(behind, leader, want, 60*time.Second)
	t.Logf("snapshot on the leader: %v; on the follower: %v", hasSnapshot(leader.dir), hasSnapshot(behind.dir))
}

// checkCaughtUp follows a restarted n until it is ready, and checks what
// /readyz promises: n then has applied what the leader had committed, so
// its local replica holds every site of want. Nothing is written meanwhile.
// It returns how long n took to apply the leader's index.
func (c *cluster) checkCaughtUp(n, leader *node, want map[string]string, timeout time.Duration) time.Duration {
	t := c.t
	t.Helper()
	target, err := c.metric(leader, "lintel_raft_applied_index")
	if err != nil {
		t.Fatal(err)
	}
	start := n.cur().started
	// Poll often: the gap between "ready" and really caught up can be short.
	var ready struct {
		AppliedIndex uint64 `json:"applied_index"`
	}
	err = poll(timeout, 5*time.Millisecond, func() error {
		r, err := c.do(n, "GET", "/readyz", nil)
		if err != nil {
			return err
		}
		if r.status != 200 {
			return errors.New(r.String())
		}
		return r.decode(&ready)
	})
	if err != nil {
		t.Fatalf("%s not ready %v after its start: %v", n, timeout, err)
	}
	readyAfter := time.Since(start)
	local, err := c.sites(n, false)
	if err != nil {
		t.Fatal(err)
	}
	if ready.AppliedIndex < uint64(target) {
		t.Errorf("%s said ready at applied_index %d, but the leader had applied %d", n, ready.AppliedIndex, uint64(target))
	}
	if m := missing(want, local); len(m) > 0 {
		t.Errorf("%s said ready, but its local list lacks %d of %d sites (first: %v)", n, len(m), len(want), m[0])
	}
	eventually(t, timeout, n.id+" applied the leader's index", func() error {
		v, err := c.metric(n, "lintel_raft_applied_index")
		if err != nil {
			return err
		}
		if v < target {
			return fmt.Errorf("applied %v of %v", v, target)
		}
		return nil
	})
	caughtUp := time.Since(start)
	strong, err := c.sites(n, true)
	if err != nil {
		t.Fatal(err)
	}
	if m := missing(want, strong); len(m) > 0 {
		t.Errorf("strong list on %s lacks %d of %d sites (first: %v)", n, len(m), len(want), m[0])
	}
	t.Logf("%s after its restart: ready after %v (at applied_index %d), applied the leader's %d after %v",
		n, readyAfter.Round(time.Millisecond), ready.AppliedIndex, uint64(target), caughtUp.Round(time.Millisecond))
	return caughtUp
}

// writeConcurrently creates total sites through n from clients goroutines.
func (c *cluster) writeConcurrently(n *node, total, clients int, prefix string) (map[string]string, error) {
	var mu sync.Mutex
	out := map[string]string{}
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan int)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := fmt.Sprintf("%s-%06d", prefix, i)
				var s site
				r, err := c.doWith(ctx, c.client, n, "POST", "/api/v1/sites", map[string]string{"name": name}, "Idempotency-Key", name)
				if err == nil && (r.status != 201 || r.decode(&s) != nil) {
					err = errors.New(r.String())
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("create %s: %w", name, err)
					cancel()
				}
				if err == nil {
					out[s.ID] = s.Name
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < total && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, firstErr
}

func hasSnapshot(dataDir string) error {
	m, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "*", "meta.json"))
	if len(m) == 0 {
		return errors.New("no snapshot in " + dataDir)
	}
	return nil
}

// A node restarted soon after the cluster formed must still find the others
// without --join.
func TestRestartSoonAfterFormingRejoins(t *testing.T) {
	c := startCluster(t, 3)
	first := c.nodes[0] // bootstrapped the cluster; never given --join
	first.kill()
	if l := c.leader(10 * time.Second); l == first {
		t.Fatalf("%s killed but still leader", first)
	}
	first.start("")
	c.waitReady(first, 20*time.Second)
	// As a follower it must forward writes to the leader, which needs gossip.
	if _, _, err := c.writeUntilAccepted(first, "through-the-restarted-first-node", 8*time.Second, 100*time.Millisecond); err != nil {
		t.Error(err)
	}
	eventually(t, 10*time.Second, first.id+" alive again in every view", func() error {
		_, err := c.checkFormed(c.nodes, 3)
		return err
	})
}

// Before it knows the cluster, a node cannot check a password: a login there
// is unavailable (503), not a wrong password, and it does not count towards
// the failed-login throttle.
func TestLoginOnUninitializedNodeIsUnavailable(t *testing.T) {
	c := newCluster(t, 1)
	n := c.nodes[0]
	// A seed nobody answers on, with a well-formed token of no cluster.
	n.start(fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--join-token", "lintel-join-1."+strings.Repeat("a", 32)+"."+strings.Repeat("0", 64))
	c.waitHealthy(n, 20*time.Second)
	for i := range 7 {
		r, err := c.do(n, "POST", "/api/v1/session", map[string]string{"email": adminEmail, "password": adminPassword})
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("login %d on a node that has not joined a cluster: %s, want 503 with Retry-After", i+1, r)
		}
	}
}

// A second process on a data dir in use must fail promptly, not wait forever
// for the Raft log's file lock.
func TestSecondProcessOnSameDataDirFails(t *testing.T) {
	c := newCluster(t, 1)
	n := c.nodes[0]
	n.start("")
	c.waitReady(n, 20*time.Second)
	args := []string{"serve", "--data-dir", n.dir, "--node-id", n.id, "--log-level", "warn",
		"--http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--raft", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--gossip", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--readers", fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	code, _, stderr := runLintel(t, 10*time.Second, args...)
	if code == -1 {
		t.Fatalf("a second lintel serve on the data dir of a running node was still running after 10s; stderr: %q", stderr)
	}
	if code == 0 || !strings.Contains(stderr, n.dir) {
		t.Errorf("second process on the same data dir: exit %d, stderr %q; want a failure naming the data dir", code, stderr)
	}
}
