package clustertests

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// soakFor reads a duration from env, or def.
func soakFor(b *testing.B, env string, def time.Duration) time.Duration {
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		b.Fatalf("%s=%q: want a duration such as 10m", env, s)
	}
	return v
}

// burnCores keeps every core busy with other processes until stop is called.
func burnCores(b *testing.B) (stop func()) {
	var cmds []*exec.Cmd
	for range runtime.NumCPU() {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
}

// BenchmarkNoSpuriousElection (issue "Foundation", 11): 64 clients spread
// over the three nodes write for LINTEL_SOAK (default 10m), then again for
// LINTEL_SOAK_BUSY (default 5m) with every core also kept busy by other
// processes; the Raft term must not move on any node. etcd 3.4 under the
// same load in the same run, when installed (LINTEL_SOAK_ANCHOR: shorter
// runs for it).
func BenchmarkNoSpuriousElection(b *testing.B) {
	quiet := soakFor(b, "LINTEL_SOAK", 10*time.Minute)
	busy := soakFor(b, "LINTEL_SOAK_BUSY", 5*time.Minute)
	// The anchor's runs may be shorter (LINTEL_SOAK_ANCHOR for both).
	anchorQuiet, anchorBusy := quiet, busy
	if os.Getenv("LINTEL_SOAK_ANCHOR") != "" {
		anchorQuiet = soakFor(b, "LINTEL_SOAK_ANCHOR", quiet)
		anchorBusy = anchorQuiet
	}
	b.ReportMetric(0, "ns/op")
	type result struct {
		name              string
		d                 time.Duration
		changes           float64
		writes, failures  int64
		p99               time.Duration
		leaderBefore, now string
	}
	var results []result

	c := startCluster(b, 3)
	terms := func() map[string]float64 {
		m := map[string]float64{}
		for _, n := range c.nodes {
			t, err := c.metric(n, "lintel_raft_term")
			if err != nil {
				b.Fatalf("term of %s: %v", n, err)
			}
			m[n.id] = t
		}
		return m
	}
	runLintel := func(name string, d time.Duration, burn bool) {
		leader := c.leader(10 * time.Second)
		before := terms()
		if burn {
			defer burnCores(b)()
		}
		w, closeW := c.lintelSpreadWriter(strings.ReplaceAll(name, " ", ""))
		ok, failed, lat := spread(64, d, w)
		closeW()
		after := terms()
		r := result{name: "Lintel " + name, d: d, writes: ok, failures: failed, p99: percentile(lat, 0.99), leaderBefore: leader.id}
		for id, t := range after {
			r.changes = max(r.changes, t-before[id])
		}
		r.now = c.leader(10 * time.Second).id
		results = append(results, r)
	}
	runLintel("quiet", quiet, false)
	runLintel("cores busy", busy, true)
	for _, n := range c.nodes {
		n.kill()
	}

	if _, err := exec.LookPath("etcd"); err == nil {
		ms := startEtcd(b, 3)
		tr := newTransport()
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 15 * time.Second}
		runEtcd := func(name string, d time.Duration, burn bool) {
			l, _ := etcdLeader(ms)
			before := etcdTerms(b, ms)
			if burn {
				defer burnCores(b)()
			}
			ok, failed, lat := spread(64, d, func(g, i int) error {
				return etcdPut(cl, ms[g%len(ms)], fmt.Sprintf("%s/%02d/%07d", name, g, i))
			})
			after := etcdTerms(b, ms)
			r := result{name: "etcd " + name, d: d, writes: ok, failures: failed, p99: percentile(lat, 0.99)}
			for id, t := range after {
				r.changes = max(r.changes, t-before[id])
			}
			if l != nil {
				r.leaderBefore = l.name
			}
			if now, err := etcdLeader(ms); err == nil {
				r.now = now.name
			}
			results = append(results, r)
		}
		runEtcd("quiet", anchorQuiet, false)
		runEtcd("cores busy", anchorBusy, true)
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "64 clients spread over 3 nodes, cardholders (Lintel) and puts (etcd); target: 0 leadership changes (before: term 2 → 9 in 2 min)\n")
	fmt.Fprintf(&sb, "  %-20s %8s %10s %10s %10s %8s %s\n", "run", "time", "changes", "writes/s", "p99", "failed", "leader before → after")
	for _, r := range results {
		fmt.Fprintf(&sb, "  %-20s %8s %10.0f %10.0f %10s %8d %s → %s\n", r.name, r.d, r.changes, float64(r.writes)/r.d.Seconds(), fmtMS(r.p99), r.failures, r.leaderBefore, r.now)
		if strings.HasPrefix(r.name, "Lintel") {
			b.ReportMetric(r.changes, strings.ReplaceAll(r.name, " ", "_")+"_changes")
			if r.changes != 0 || r.leaderBefore != r.now {
				b.Errorf("%s: leadership changed under load (%v term changes, %s → %s)", r.name, r.changes, r.leaderBefore, r.now)
			}
		}
	}
	b.Log(sb.String())
}
