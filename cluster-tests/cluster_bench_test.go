package clustertests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks do a fixed amount of work whatever b.N is (make bench runs
// them with -benchtime 1x): each starts its own 3-node cluster, and the
// figures are reported with ReportMetric and printed as a table.

// table prints figures as aligned rows: name, measured, SPEC target.
func table(b *testing.B, title string, rows [][3]string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\n  %-34s %12s   %s\n", title, "figure", "measured", "SPEC target")
	for _, r := range rows {
		fmt.Fprintf(&sb, "  %-34s %12s   %s\n", r[0], r[1], r[2])
	}
	b.Log(sb.String())
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.2f ms", ms(d)) }

func BenchmarkWriteLatency(b *testing.B) {
	c := startCluster(b, 3)
	leader := c.leader(10 * time.Second)
	f := c.followers(leader)[0]
	measure := func(n *node, count int, prefix string) []time.Duration {
		out := make([]time.Duration, 0, count)
		for i := range count {
			start := time.Now()
			r, err := c.createSite(n, fmt.Sprintf("%s-%04d", prefix, i), "")
			d := time.Since(start)
			if err != nil {
				b.Fatalf("write %d through %s: %v", i, n, err)
			}
			if r.status != 201 {
				b.Fatalf("write %d through %s: %s", i, n, r)
			}
			out = append(out, d)
		}
		return out
	}
	// Open the connections and settle the leader before measuring.
	measure(leader, 20, "warm-leader")
	measure(f, 20, "warm-follower")
	b.ResetTimer()
	ld := measure(leader, 1000, "lat-leader")
	fd := measure(f, 300, "lat-follower")
	b.StopTimer()

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(percentile(ld, 0.50)), "leader_p50_ms")
	b.ReportMetric(ms(percentile(ld, 0.99)), "leader_p99_ms")
	b.ReportMetric(ms(percentile(fd, 0.50)), "follower_p50_ms")
	b.ReportMetric(ms(percentile(fd, 0.99)), "follower_p99_ms")
	table(b, "Sequential POST /api/v1/sites, 3 nodes, fsync on", [][3]string{
		{"through the leader, p50 (1000)", fmtMS(percentile(ld, 0.50)), "≤ 5 ms"},
		{"through the leader, p99", fmtMS(percentile(ld, 0.99)), ""},
		{"through a follower, p50 (300)", fmtMS(percentile(fd, 0.50)), "≤ 5 ms"},
		{"through a follower, p99", fmtMS(percentile(fd, 0.99)), ""},
	})
}

// load runs clients writers against n for d. With pairs, each client
// deletes the site it created, so the number of sites stays small.
func (c *cluster) load(n *node, clients int, d time.Duration, prefix string, pairs bool) (writes, failures int64, lat []time.Duration) {
	tr := newTransport() // MaxIdleConnsPerHost 128: a kept-alive connection per client
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	var okN, failN atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				start := time.Now()
				r, err := c.doWith(context.Background(), cl, n, "POST", "/api/v1/sites", map[string]string{"name": fmt.Sprintf("%s-%02d-%06d", prefix, g, i)})
				var s site
				if err != nil || r.status != 201 || r.decode(&s) != nil {
					failN.Add(1)
					continue
				}
				mine = append(mine, time.Since(start))
				okN.Add(1)
				if !pairs {
					continue
				}
				start = time.Now()
				r, err = c.doWith(context.Background(), cl, n, "DELETE", "/api/v1/sites/"+s.ID, nil)
				if err != nil || r.status != 204 {
					failN.Add(1)
					continue
				}
				mine = append(mine, time.Since(start))
				okN.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return okN.Load(), failN.Load(), lat
}

func BenchmarkWriteThroughput(b *testing.B) {
	c := startCluster(b, 3)
	leader := c.leader(10 * time.Second)
	const clients = 64
	b.ResetTimer()
	// First with few sites in the state, then creating new ones only.
	steadyD := 5 * time.Second
	sw, sf, slat := c.load(leader, clients, steadyD, "pair", true)
	growD := 10 * time.Second
	start := time.Now()
	gw, gf, glat := c.load(leader, clients, growD, "tp", false)
	growD = time.Since(start)
	b.StopTimer()

	perSec := float64(gw) / growD.Seconds()
	steady := float64(sw) / steadyD.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(perSec, "writes/s")
	b.ReportMetric(ms(percentile(glat, 0.50)), "p50_ms")
	b.ReportMetric(ms(percentile(glat, 0.99)), "p99_ms")
	b.ReportMetric(float64(gf), "errors")
	b.ReportMetric(steady, "create_delete_writes/s")
	b.ReportMetric(float64(sf), "create_delete_errors")
	if gf+sf > 0 {
		b.Errorf("%d writes failed under load", gf+sf)
	}
	table(b, fmt.Sprintf("%d clients writing through the leader, 3 nodes, fsync on", clients), [][3]string{
		{fmt.Sprintf("new sites, %v: writes/s", growD.Round(time.Second)), fmt.Sprintf("%.0f", perSec), "≥ 3000/s"},
		{"  p50 / p99 per write", fmtMS(percentile(glat, 0.50)) + " / " + fmtMS(percentile(glat, 0.99)), ""},
		{"  sites created", fmt.Sprintf("%d", gw), ""},
		{fmt.Sprintf("create+delete, %v: writes/s", steadyD), fmt.Sprintf("%.0f", steady), "≥ 3000/s"},
		{"  p50 / p99 per write", fmtMS(percentile(slat, 0.50)) + " / " + fmtMS(percentile(slat, 0.99)), ""},
	})
}

func BenchmarkFailover(b *testing.B) {
	c := startCluster(b, 3)
	c.waitPeersSaved(15 * time.Second)
	const rounds = 5
	var figs []time.Duration
	var each []string
	b.ResetTimer()
	for round := range rounds {
		leader := c.leader(10 * time.Second)
		other := c.followers(leader)[0]
		c.mustCreateSite(other, fmt.Sprintf("round-%d-before", round))
		leader.kill()
		killed := time.Now()
		_, at, err := c.writeUntilAccepted(other, fmt.Sprintf("round-%d-after", round), 15*time.Second, 10*time.Millisecond)
		if err != nil {
			b.Fatalf("round %d: %v", round, err)
		}
		d := at.Sub(killed)
		figs = append(figs, d)
		each = append(each, fmt.Sprintf("%.0f", ms(d)))
		leader.start("")
		c.waitReady(leader, 30*time.Second)
		c.waitFormed(c.nodes, 3, 30*time.Second)
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(percentile(figs, 0.50)), "p50_ms")
	b.ReportMetric(ms(percentile(figs, 1)), "max_ms")
	table(b, "Leader killed (SIGKILL) until a write through another node is accepted", [][3]string{
		{"each round (ms)", strings.Join(each, " "), ""},
		{"p50", fmtMS(percentile(figs, 0.50)), "≤ 1.5 s"},
		{"max", fmtMS(percentile(figs, 1)), "≤ 1.5 s"},
	})
}

// BenchmarkCatchUp: a follower cut off (frozen with SIGSTOP) while 10 000
// writes commit, then let go: how long until it has applied them all.
func BenchmarkCatchUp(b *testing.B) {
	c := startCluster(b, 3)
	leader := c.leader(10 * time.Second)
	f := c.followers(leader)[0]
	const writes, clients = 10000, 32
	b.ResetTimer()
	f.pause()
	start := time.Now()
	if _, err := c.writeConcurrently(leader, writes, clients, "partitioned"); err != nil {
		f.resume()
		b.Fatal(err)
	}
	wrote := time.Since(start)
	target, err := c.metric(leader, "lintel_raft_applied_index")
	if err != nil {
		b.Fatal(err)
	}
	f.resume()
	healed := time.Now()
	var behind float64
	if v, err := c.metric(f, "lintel_raft_applied_index"); err == nil {
		behind = target - v
	}
	err = poll(60*time.Second, 10*time.Millisecond, func() error {
		v, err := c.metric(f, "lintel_raft_applied_index")
		if err != nil {
			return err
		}
		if v < target {
			return fmt.Errorf("%s applied %v of %v", f, v, target)
		}
		return nil
	})
	took := time.Since(healed)
	b.StopTimer()
	if err != nil {
		b.Fatalf("not caught up after %v: %v", took, err)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(took), "caught_up_ms")
	table(b, "Follower cut off during 10 000 writes, then healed", [][3]string{
		{fmt.Sprintf("%d writes, %d clients, 2 of 3 nodes", writes, clients), fmt.Sprintf("%.0f /s", writes/wrote.Seconds()), ""},
		{"entries behind at heal", fmt.Sprintf("%.0f", behind), ""},
		{"caught up after heal", fmtMS(took), "≤ 5 s"},
	})
}
