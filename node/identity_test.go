package node_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lintel/internal/testnode"
	"lintel/node"
)

func nodeJSON(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// startOut starts a node without --join and returns its error and output.
func startOut(dir, id string) (*node.Node, string, error) {
	var out bytes.Buffer
	n, err := node.Start(node.Config{DataDir: dir, NodeID: id, Building: "B",
		HTTP: "127.0.0.1:0", Raft: "127.0.0.1:0", Gossip: "127.0.0.1:0", Readers: "127.0.0.1:0",
		AdminEmail: "a@b.c", LogLevel: "info", LogOutput: &out})
	return n, out.String(), err
}

// A member whose log is gone or its metadata empty refuses to start without
// --join, and never bootstraps a second cluster.
func TestMemberWithoutRaftStateRefuses(t *testing.T) {
	dir := t.TempDir()
	n := testnode.StartIn(t, dir, "n1")
	if m := nodeJSON(t, dir); m["cluster_member"] != true {
		t.Fatalf("node.json after bootstrap: %v", m)
	}
	n.Stop()
	db := filepath.Join(dir, "raft", "wal", "wal-meta.db")
	for _, damage := range []string{"empty", "missing", "missing, node.json of an earlier build"} {
		switch damage {
		case "empty":
			os.Truncate(db, 0)
		case "missing":
			os.RemoveAll(filepath.Dir(db))
		default:
			m := nodeJSON(t, dir)
			delete(m, "cluster_member")
			b, _ := json.Marshal(m)
			os.WriteFile(filepath.Join(dir, "node.json"), b, 0o600)
		}
		n, out, err := startOut(dir, "n1")
		if err == nil {
			n.Stop()
			t.Fatalf("%s: started", damage)
		}
		msg := err.Error()
		for _, w := range []string{db + " is missing or empty", filepath.Join(dir, "node.json") + " says this node is a member", "--join", "--data-dir"} {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not say %q", damage, msg, w)
			}
		}
		if damage == "empty" && !strings.Contains(msg, "move "+filepath.Join(dir, "raft")+" aside") {
			t.Errorf("empty: error %q does not say to move raft aside", msg)
		}
		if strings.Contains(out, "Password") || strings.Contains(out, "bootstrapped") {
			t.Errorf("%s: bootstrapped a new cluster:\n%s", damage, out)
		}
		if fi, err := os.Stat(db); damage != "empty" && err == nil {
			t.Errorf("%s: the refused start made a new log (%d bytes)", damage, fi.Size())
		}
	}
}

// A node that joins is marked a member once the leader's log reaches it;
// a new data dir that never joined is not.
func TestJoinerBecomesMember(t *testing.T) {
	a := testnode.Start(t, "a")
	testnode.WaitReady(t, a)
	dir := t.TempDir()
	testnode.StartIn(t, dir, "b", a.GossipAddr())
	testnode.Eventually(t, 15*time.Second, func() bool {
		return nodeJSON(t, dir)["cluster_member"] == true
	}, "node.json of the joiner never says member: %v", nodeJSON(t, dir))
}
