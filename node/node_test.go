package node_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"lintel/internal/testnode"
	"lintel/node"
)

type clusterView struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID          string `json:"id"`
		Suffrage    string `json:"suffrage"`
		GossipState string `json:"gossip_state"`
		RaftState   string `json:"raft_state"`
	} `json:"nodes"`
}

func view(t *testing.T, c *testnode.Client) clusterView {
	t.Helper()
	var v clusterView
	r := c.Do(t, "GET", "/api/v1/cluster", "", nil)
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("cluster view: %d %s", r.StatusCode, r.Body)
	}
	return v
}

func suffrages(v clusterView) string {
	var s []string
	for _, n := range v.Nodes {
		s = append(s, n.ID+"="+n.Suffrage)
	}
	return strings.Join(s, ",")
}

func TestNodesJoinWriteThroughFollowerRemove(t *testing.T) {
	n1 := testnode.Start(t, "n1")
	testnode.WaitReady(t, n1)
	c1 := testnode.Login(t, n1)

	// A second node joins as a non-voter: voters stay odd.
	n2 := testnode.Start(t, "n2", n1.GossipAddr())
	testnode.Eventually(t, 15*time.Second, func() bool { return suffrages(view(t, c1)) == "n1=voter,n2=nonvoter" },
		"n2 did not join as a non-voter: %s", suffrages(view(t, c1)))
	// With a third, all three vote.
	n3dir := t.TempDir()
	n3 := testnode.StartIn(t, n3dir, "n3", n1.GossipAddr())
	testnode.Eventually(t, 15*time.Second, func() bool { return suffrages(view(t, c1)) == "n1=voter,n2=voter,n3=voter" },
		"three voters expected: %s", suffrages(view(t, c1)))
	testnode.WaitReady(t, n3)

	// A write through a follower is answered there, and read on all with strong consistency.
	c3 := testnode.Login(t, n3)
	r := c3.Do(t, "POST", "/api/v1/sites", `{"name":"Via follower"}`, nil)
	if r.StatusCode != 201 {
		t.Fatalf("write via follower: %d %s", r.StatusCode, r.Body)
	}
	var s struct{ ID string }
	json.Unmarshal([]byte(r.Body), &s)
	// Read-your-write on the follower without asking for strong consistency.
	if r := c3.Do(t, "GET", "/api/v1/sites/"+s.ID, "", nil); r.StatusCode != 200 {
		t.Fatalf("follower lost its own write: %d", r.StatusCode)
	}
	c2 := testnode.Login(t, n2)
	for _, c := range []*testnode.Client{c1, c2, c3} {
		if r := c.Do(t, "GET", "/api/v1/sites/"+s.ID+"?consistency=strong", "", nil); r.StatusCode != 200 {
			t.Fatalf("%s: strong read: %d %s", c.Base, r.StatusCode, r.Body)
		}
	}
	if m := c3.Do(t, "GET", "/metrics", "", nil).Body; !strings.Contains(m, "lintel_forwarded_writes_total") ||
		strings.Contains(m, "lintel_forwarded_writes_total 0\n") {
		t.Fatal("the follower's forwarded writes were not counted")
	}
	v := view(t, c2)
	if v.Leader != "n1" || len(v.Nodes) != 3 {
		t.Fatalf("view from n2: %+v", v)
	}
	for _, nv := range v.Nodes {
		if nv.GossipState != "alive" || (nv.RaftState != "leader" && nv.RaftState != "follower") {
			t.Fatalf("node %s: %+v", nv.ID, nv)
		}
	}

	// A restarted node finds the cluster by itself (no --join) and catches up.
	n3.Stop()
	r = c1.Do(t, "POST", "/api/v1/sites", `{"name":"While n3 was down"}`, nil)
	if r.StatusCode != 201 {
		t.Fatalf("write with n3 down: %d %s", r.StatusCode, r.Body)
	}
	json.Unmarshal([]byte(r.Body), &s)
	n3 = testnode.StartIn(t, n3dir, "n3")
	testnode.WaitReady(t, n3)
	c3 = testnode.Login(t, n3)
	testnode.Eventually(t, 10*time.Second, func() bool {
		return c3.Do(t, "GET", "/api/v1/sites/"+s.ID, "", nil).StatusCode == 200
	}, "restarted n3 did not catch up")

	// Removing a node takes it out of Raft, and it is not added back while it gossips.
	if r := c1.Do(t, "DELETE", "/api/v1/cluster/nodes/n2", "", nil); r.StatusCode != 204 {
		t.Fatalf("remove n2: %d %s", r.StatusCode, r.Body)
	}
	time.Sleep(1500 * time.Millisecond) // two reconcile rounds of the leader
	if got := suffrages(view(t, c1)); got != "n1=voter,n3=voter" {
		t.Fatalf("after removal: %s", got)
	}
	if r := c3.Do(t, "POST", "/api/v1/sites", `{"name":"After removal"}`, nil); r.StatusCode != 201 {
		t.Fatalf("write after removal: %d %s", r.StatusCode, r.Body)
	}
}

func TestIdentityIsKept(t *testing.T) {
	dir := t.TempDir()
	n := testnode.StartIn(t, dir, "first")
	n.Stop()
	_, err := node.Start(node.Config{DataDir: dir, NodeID: "second", HTTP: "127.0.0.1:0", Raft: "127.0.0.1:0", Gossip: "127.0.0.1:0",
		AdminEmail: "a@b.c", LogOutput: nil, LogLevel: "error"})
	if err == nil || !strings.Contains(err.Error(), `"first"`) || !strings.Contains(err.Error(), `"second"`) {
		t.Fatalf("a different node id on an existing data dir: %v", err)
	}
}
