package clustertests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A follower's log damaged while it was down: its segment cut short, then
// its metadata emptied. It
// must refuse to start with one line naming the file and what to do, never
// bootstrap a cluster of its own; with its raft/ moved aside and --join it
// catches up from the others.
func TestDamagedRaftLogRefusedThenRejoins(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader(10 * time.Second)
	var f *node
	for _, n := range c.followers(leader) {
		if n != c.nodes[0] {
			f = n
		}
	}
	var via *node // a running node to --join through
	for _, n := range c.nodes {
		if n != f {
			via = n
			break
		}
	}
	before := c.mustCreateSite(leader, "Written before the damage")
	eventually(t, 10*time.Second, f.id+" has the site", func() error {
		s, err := c.sites(f, false)
		if err == nil && s[before.ID] != before.Name {
			return fmt.Errorf("no site %s yet", before.ID)
		}
		return err
	})
	f.kill()
	db := filepath.Join(f.dir, "raft", "wal", "wal-meta.db")

	// refused runs the node to its exit and returns its error line.
	refused := func(what string) string {
		t.Helper()
		code, stdout, stderr := runLintel(t, 30*time.Second, f.args("")...)
		if code == -1 {
			t.Fatalf("%s: still running after 30 s; stderr:\n%s", what, stderr)
		}
		if code == 0 {
			t.Fatalf("%s: exited 0; stderr:\n%s", what, stderr)
		}
		for _, bad := range []string{"Password (shown once)", "bootstrapped a new", "serving the console"} {
			if strings.Contains(stdout+stderr, bad) {
				t.Errorf("%s: the node said %q: it must not start, nor make a new cluster:\n%s%s", what, bad, stdout, stderr)
			}
		}
		var line string
		for _, l := range strings.Split(stderr, "\n") {
			if strings.Contains(l, db) {
				line = l
			}
		}
		if line == "" || !strings.HasPrefix(line, "lintel serve: ") || !strings.Contains(line, "--join") {
			t.Fatalf("%s: exit %d, no one-line error naming %s and --join; stderr:\n%s", what, code, db, stderr)
		}
		t.Logf("%s: exit %d: %s", what, code, line)
		return line
	}
	// sameCluster: the others still see the three nodes of one cluster, the
	// damaged node among them as a voter that is not the leader.
	sameCluster := func(what string) {
		t.Helper()
		for _, n := range c.nodes {
			if n == f {
				continue
			}
			v, err := c.view(n)
			if err != nil {
				t.Fatalf("%s: view of %s: %v", what, n, err)
			}
			var got []string
			for _, x := range v.Nodes {
				got = append(got, x.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, ids(c.nodes)) || v.Leader == "" || v.Leader == f.id {
				t.Fatalf("%s: %s sees nodes %v, leader %q", what, n, got, v.Leader)
			}
		}
	}

	// (a) The log's segment cut to half the bytes its entries use (raft-wal
	// preallocates the file; the rest is zeros): the node had applied more.
	segs, _ := filepath.Glob(filepath.Join(f.dir, "raft", "wal", "*.wal"))
	if len(segs) == 0 {
		t.Fatal("no log segment")
	}
	seg := segs[len(segs)-1]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	used := len(b)
	for used > 0 && b[used-1] == 0 {
		used--
	}
	if err := os.Truncate(seg, int64(used/2)); err != nil {
		t.Fatal(err)
	}
	if line := refused("log segment cut short"); !strings.Contains(line, "is damaged") || !strings.Contains(line, "aside") {
		t.Errorf("cut short: %s", line)
	}
	sameCluster("after the cut-short start")

	// (b) Empty: node.json says member, so no new cluster.
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	if line := refused("log metadata empty"); !strings.Contains(line, "says this node is a member") {
		t.Errorf("empty: %s", line)
	}
	sameCluster("after the empty start")

	// (c) raft/ moved aside, started with --join: it catches up.
	if err := os.Rename(filepath.Join(f.dir, "raft"), filepath.Join(f.dir, "raft.damaged")); err != nil {
		t.Fatal(err)
	}
	f.start(via.gossip)
	c.waitReady(f, 30*time.Second)
	eventually(t, 20*time.Second, f.id+" serves the site written before the damage (strong read)", func() error {
		s, err := c.sites(f, true)
		if err == nil && s[before.ID] != before.Name {
			return fmt.Errorf("no site %s yet", before.ID)
		}
		return err
	})
	after := c.mustCreateSite(f, "Written through the rejoined node")
	eventually(t, 10*time.Second, f.id+" serves its own write locally", func() error {
		s, err := c.sites(f, false)
		if err == nil && (s[after.ID] != after.Name || s[before.ID] != before.Name) {
			return fmt.Errorf("sites %v", s)
		}
		return err
	})
	c.waitFormed(c.nodes, 3, 30*time.Second)
}
