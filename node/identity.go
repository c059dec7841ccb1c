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
)

// identity is node.json: who this data dir belongs to.
type identity struct {
	NodeID    string    `json:"node_id"`
	Instance  string    `json:"instance"` // random, new with every fresh data dir
	CreatedAt time.Time `json:"created_at"`
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
	id := identity{NodeID: nodeID, Instance: hex.EncodeToString(inst[:]), CreatedAt: time.Now().UTC()}
	b, _ = json.MarshalIndent(id, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return id, err
	}
	return id, os.Rename(tmp, p)
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
