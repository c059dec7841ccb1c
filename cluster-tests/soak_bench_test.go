package clustertests

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkNoSpuriousElection (SPEC 9: "no spurious election in 10 min at
// full load"): 64 clients write through the leader of 3 nodes for
// LINTEL_SOAK (default 10m); the Raft term must not move on any node.
func BenchmarkNoSpuriousElection(b *testing.B) {
	d := 10 * time.Minute
	if s := os.Getenv("LINTEL_SOAK"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			b.Fatalf("LINTEL_SOAK=%q: want a duration such as 10m", s)
		}
		d = v
	}
	c := startCluster(b, 3)
	leader := c.leader(10 * time.Second)
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
	before := terms()
	b.ResetTimer()
	writes, failures, lat := c.load(leader, 64, d, "soak", true)
	b.StopTimer()
	after := terms()
	elections := 0.0
	for id, t := range after {
		elections = max(elections, t-before[id])
	}
	now := c.leader(10 * time.Second)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(elections, "elections")
	b.ReportMetric(float64(writes)/d.Seconds(), "writes/s")
	b.ReportMetric(float64(failures), "errors")
	table(b, fmt.Sprintf("64 clients create+delete through the leader for %s, 3 nodes", d), [][3]string{
		{"elections (term changes)", fmt.Sprintf("%.0f", elections), "0 in 10 min"},
		{"leader before / after", leader.id + " / " + now.id, "same"},
		{"writes/s", fmt.Sprintf("%.0f", float64(writes)/d.Seconds()), ""},
		{"write p99", fmtMS(percentile(lat, 0.99)), ""},
		{"failed writes", fmt.Sprintf("%d", failures), "0"},
	})
	if elections != 0 || now.id != leader.id {
		b.Errorf("spurious election under load: terms %v → %v, leader %s → %s", before, after, leader.id, now.id)
	}
}
