package consensus

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/migrate"
)

// The Raft log and stable store is hashicorp's raft-wal in DATA/raft/wal:
// an append writes the batch to the tail segment with one fdatasync, where
// a bbolt commit (raft-boltdb) rewrote tree pages and synced twice. Under
// load that was a sixth of the CPU every write cost the cluster. A data dir
// of an earlier build keeps its log in DATA/raft/raft.db: Open checks it as
// before (datadir.go), copies it into a new WAL and removes it.

// walSegmentSize: raft-wal preallocates each segment, and starts a new one
// whenever Raft truncates the log's tail (a follower dropping a deposed
// leader's entries), so a run of elections leaves one per truncation until
// the next snapshot compacts them. 2 MiB holds some 7 000 cardholder writes;
// a building controller's disk is small.
var walSegmentSize = 2 << 20

func walDirOf(dataDir string) string  { return filepath.Join(dataDir, "raft", "wal") }
func walMetaOf(dataDir string) string { return filepath.Join(walDirOf(dataDir), metadb.FileName) }
func boltLogOf(dataDir string) string { return filepath.Join(dataDir, "raft", "raft.db") }

// LogFile is the file that says what this data dir's Raft log holds: the
// WAL's metadata, or raft.db while a data dir of an earlier build has not
// been opened by this one yet.
func LogFile(dataDir string) string {
	if _, err := os.Stat(walDirOf(dataDir)); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(boltLogOf(dataDir)); err == nil {
			return boltLogOf(dataDir)
		}
	}
	return walMetaOf(dataDir)
}

// logStore is the WAL with its metadata store, which the WAL's Close
// leaves open (and locked): a node that reopens its log in one process, as
// the tests do, closes both.
type logStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (s *logStore) Close() error {
	err := s.WAL.Close()
	if cerr := s.meta.Close(); err == nil {
		err = cerr
	}
	return err
}

func openWAL(dir string, logger hclog.Logger) (*logStore, error) {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithSegmentSize(walSegmentSize), wal.WithLogger(logger.Named("wal")), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return nil, err
	}
	return &logStore{w, meta}, nil
}

// segmentFiles lists the WAL's segment files in dir.
func segmentFiles(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	return m
}

// openLog opens the node's log, making it (or moving raft.db into it) when
// there is none. applied is the durable applied mark: a log that ends below
// it (and below the newest snapshot) lost entries this node had applied.
// Every entry is read once before Raft gets the log, on this goroutine, so
// that damage is an error naming the file, never a crash later.
func openLog(dataDir string, applied uint64, logger hclog.Logger) (*logStore, error) {
	dir, meta := walDirOf(dataDir), walMetaOf(dataDir)
	fi, err := os.Stat(meta)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if segs := segmentFiles(dir); len(segs) > 0 {
			// raft-wal would start an empty log and delete them.
			return nil, damagedStore(meta, fmt.Sprintf("it is missing, and %d segment files of the log are left", len(segs)))
		}
		if err := migrateBolt(dataDir, logger); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case fi.Size() == 0:
		return nil, emptyStore(meta)
	default:
		// bbolt trusts its pages as it does in raft.db; and the check takes
		// a shared lock, so a second process says so instead of hanging on
		// raft-wal's exclusive one.
		if err := checkBolt(meta, 0); err != nil {
			return nil, err
		}
	}
	var w *logStore
	err = guarded(func() (err error) {
		w, err = openWAL(dir, logger)
		return err
	})
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	if err != nil {
		return nil, damagedStore(meta, err.Error())
	}
	if err := verifyLog(w, dataDir, applied); err != nil {
		w.Close()
		return nil, err
	}
	// A move from raft.db that stopped after the rename.
	if err := os.Remove(boltLogOf(dataDir)); err == nil {
		syncDir(filepath.Dir(dir))
	}
	return w, nil
}

// verifyLog reads every entry of the log: a segment cut short or written
// over fails raft-wal's checks or the entry's decoding. raft-wal takes a
// tail it cannot read for a torn last write and drops it: only the applied
// mark tells that from entries lost.
func verifyLog(w *logStore, dataDir string, applied uint64) error {
	meta := walMetaOf(dataDir)
	first, err := w.FirstIndex()
	if err != nil {
		return damagedStore(meta, err.Error())
	}
	last, err := w.LastIndex()
	if err != nil {
		return damagedStore(meta, err.Error())
	}
	metas, err := listSnapshots(dataDir)
	if err != nil {
		return err
	}
	if err := checkNewestSnapshot(dataDir, metas); err != nil {
		return err
	}
	var newest uint64
	if len(metas) > 0 {
		newest = metas[0].Index
	}
	if last > 0 && first > newest+1 {
		// Raft panics in NewRaft on a log that lacks an entry after the snapshot.
		return gapError(dataDir, walDirOf(dataDir), metas, logGap{newest + 1, first - 1})
	}
	if applied > max(last, newest) {
		return damagedStore(meta, fmt.Sprintf("the log ends at entry %d, but this node had applied entries up to %d: entries were lost", last, applied))
	}
	if last == 0 {
		return nil
	}
	return guarded(func() error {
		var l raft.Log
		for i := first; i <= last; i++ {
			if err := w.GetLog(i, &l); err != nil {
				return damagedStore(meta, fmt.Sprintf("log entry %d: %v", i, err))
			}
			if l.Index != i {
				return damagedStore(meta, fmt.Sprintf("log entry %d says it is entry %d", i, l.Index))
			}
		}
		return nil
	})
}

// migrateBolt moves the log of an earlier build (DATA/raft/raft.db) into a
// new WAL: checked and opened as before, copied into DATA/raft/wal.new,
// renamed into place, then removed. A stop at any point leaves either
// raft.db alone (the copy starts again) or the whole WAL.
func migrateBolt(dataDir string, logger hclog.Logger) error {
	old := boltLogOf(dataDir)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	src, err := openStore(old) // checkStore first: a damaged raft.db is named as before
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := walDirOf(dataDir) + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	dst, err := openWAL(tmp, logger)
	if err != nil {
		return fmt.Errorf("make the new raft log in %s: %w", tmp, err)
	}
	n, err := copyLog(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("move the raft log from %s to %s: %w (raft.db is unchanged; free space and restart)", old, walDirOf(dataDir), err)
	}
	if err := os.Rename(tmp, walDirOf(dataDir)); err != nil {
		return err
	}
	syncDir(filepath.Dir(old))
	logger.Info("moved the raft log from raft.db into wal/", "entries", n)
	return nil
}

// copyLog copies the entries and Raft's own keys (those that were ever set).
func copyLog(dst *logStore, src *raftboltdb.BoltStore) (uint64, error) {
	first, err := src.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := src.LastIndex()
	if err != nil {
		return 0, err
	}
	if last > 0 {
		if err := migrate.CopyLogs(context.Background(), dst, src, 1<<20, nil); err != nil {
			return 0, err
		}
	}
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := src.GetUint64([]byte(k))
		if err != nil && !notFound(err) {
			return 0, err
		}
		if err == nil {
			if err := dst.SetUint64([]byte(k), v); err != nil {
				return 0, err
			}
		}
	}
	v, err := src.Get([]byte("LastVoteCand"))
	if err != nil && !notFound(err) {
		return 0, err
	}
	if err == nil {
		if err := dst.Set([]byte("LastVoteCand"), v); err != nil {
			return 0, err
		}
	}
	if last == 0 {
		return 0, nil
	}
	return last - first + 1, nil
}

func notFound(err error) bool {
	return errors.Is(err, raftboltdb.ErrKeyNotFound) || strings.Contains(err.Error(), "not found")
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
