package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"lintel/consensus"
)

// identity is node.json: who this data dir belongs to.
type identity struct {
	NodeID    string    `json:"node_id"`
	Instance  string    `json:"instance"` // random, new with every fresh data dir
	CreatedAt time.Time `json:"created_at"`
	// Member: this data dir holds (or held) the Raft state of a cluster. Set
	// once it bootstrapped one or a leader's log reached it; nil in the files
	// of earlier builds (see member).
	Member *bool `json:"cluster_member,omitempty"`
}

// member says whether this data dir was part of a cluster. A node.json of an
// earlier build does not say: then it was if Raft ever opened here.
func (id identity) member(dir string) bool {
	if id.Member != nil {
		return *id.Member
	}
	_, err := os.Stat(filepath.Join(dir, "raft"))
	return err == nil
}

// loadIdentity reads node.json, or writes it on first start. A different
// node id on an existing data dir is refused: Raft knows this data by its id.
func loadIdentity(dir, nodeID string) (identity, error) {
	p := filepath.Join(dir, "node.json")
	b, err := os.ReadFile(p)
	if err == nil {
		var id identity
		if err := json.Unmarshal(b, &id); err != nil || id.NodeID == "" {
			return id, fmt.Errorf("%s is damaged (%v); restore it from a backup or start with a new data dir", p, err)
		}
		if id.NodeID != nodeID {
			return id, fmt.Errorf("data dir %s belongs to node %q, not %q; start with --node-id %s or use another --data-dir", dir, id.NodeID, nodeID, id.NodeID)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return identity{}, err
	}
	var inst [8]byte
	rand.Read(inst[:])
	no := false
	id := identity{NodeID: nodeID, Instance: hex.EncodeToString(inst[:]), CreatedAt: time.Now().UTC(), Member: &no}
	return id, saveIdentity(dir, id)
}

// saveIdentity writes node.json atomically and durably: a power cut leaves
// the old file or the new one, and the member flag, once written, stays.
func saveIdentity(dir string, id identity) error {
	p := filepath.Join(dir, "node.json")
	b, _ := json.MarshalIndent(id, "", "  ")
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// peersFile remembers the gossip addresses last seen, so a restarted node
// finds the cluster again without --join.
const peersFile = "peers.json"

func loadPeers(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, peersFile))
	if err != nil {
		return nil
	}
	var out []string
	json.Unmarshal(b, &out)
	return out
}

func savePeers(dir string, peers []string) error {
	b, _ := json.Marshal(peers)
	tmp := filepath.Join(dir, peersFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, peersFile))
}

// withMember records in node.json that this data dir holds a cluster's Raft
// state, and returns the identity as written; once is enough.
func withMember(dir string, id identity) (identity, error) {
	if id.Member != nil && *id.Member {
		return id, nil
	}
	yes := true
	id.Member = &yes
	return id, saveIdentity(dir, id)
}

// checkLostState refuses to start a member whose Raft state is gone (the
// log's metadata missing or empty) without --join: bootstrapping would make
// a second cluster with a new admin password, and waiting would serve
// nothing.
func checkLostState(dir string, id identity, hasState, join bool) error {
	if hasState || join || !id.member(dir) {
		return nil
	}
	db, nj := consensus.LogFile(dir), filepath.Join(dir, "node.json")
	todo := "restart with --join <gossip address of another node> to catch up from the others"
	if fi, err := os.Stat(db); err == nil && fi.Size() == 0 {
		// bbolt cannot open an empty file read-only; Open refuses it too.
		todo = "move " + filepath.Join(dir, "raft") + " aside and " + todo
	}
	return fmt.Errorf("%s is missing or empty, but %s says this node is a member of a cluster: %s, or use a new --data-dir to start a new cluster", db, nj, todo)
}

// watchMember marks node.json once a leader's log (or snapshot) has reached
// this joining node; until then the data dir holds nothing to lose. It writes
// its own copy of the identity: n.id is read by other goroutines.
func (n *Node) watchMember(id identity) {
	defer n.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if n.raft.LastIndex() == 0 {
				continue
			}
			if _, err := withMember(n.cfg.DataDir, id); err != nil {
				n.log.Warn("could not record cluster membership in node.json; retrying", "err", err)
				continue
			}
			n.log.Info("recorded in node.json that this data dir holds the cluster's state")
			return
		}
	}
}
