package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"lintel/consensus/state"
)

// archive is this node's store of the account history lines that left the
// replicated state (state.HistoryKeep): DATA/history/history.db in bbolt,
// keyed by account and index, so one account's lines are one range in
// commit order. Every node archives the lines it trims when it applies the
// command that trims them; a node that joins later, or restores a snapshot
// taken after a trim, has the lines the snapshot keeps and archives from
// then on.
type archive struct {
	db *bolt.DB
}

var archiveBucket = []byte("history")

func openArchive(dataDir string) (*archive, error) {
	dir := filepath.Join(dataDir, "history")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("history archive: %w", err)
	}
	path := filepath.Join(dir, "history.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("history archive %s: %w (another lintel may be running on this data dir; if the file is damaged, move it aside: the node keeps the newest %d lines of each account without it)", path, err, state.HistoryKeep)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(archiveBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("history archive %s: %w", path, err)
	}
	return &archive{db: db}, nil
}

func archiveKey(account string, index uint64) []byte {
	return fmt.Appendf(nil, "%s\x00%020d", account, index)
}

// put stores lines, in one transaction (fsync'd). Putting a line again (the
// log replayed at a restart trims it again) changes nothing.
func (a *archive) put(lines []state.HistoryEntry) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(archiveBucket)
		for i := range lines {
			v, err := json.Marshal(&lines[i])
			if err != nil {
				return err
			}
			if err := b.Put(archiveKey(lines[i].AccountID, lines[i].Index), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// lines yields an account's archived lines before index before (0: all), in
// commit order, until fn returns false.
func (a *archive) lines(account string, before uint64, fn func(state.HistoryEntry) bool) error {
	prefix := []byte(account + "\x00")
	return a.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(archiveBucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && len(k) == len(prefix)+20 && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
			idx, err := strconv.ParseUint(string(k[len(prefix):]), 10, 64)
			if err != nil {
				return fmt.Errorf("history archive: bad key %q", k)
			}
			if before != 0 && idx >= before {
				return nil
			}
			var e state.HistoryEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("history archive: line %d of %s: %w", idx, account, err)
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}

func (a *archive) close() error { return a.db.Close() }
