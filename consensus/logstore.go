package consensus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"go.etcd.io/bbolt"
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
	// A write that filled a segment left the switch to the next one to a
	// goroutine; an empty delete waits for it (under the write lock), so a
	// clean stop never leaves the sealed tail sealedTail repairs.
	if first, err := s.FirstIndex(); err == nil && first > 0 {
		s.DeleteRange(0, 0)
	}
	err := s.WAL.Close()
	if cerr := s.meta.Close(); err == nil {
		err = cerr
	}
	return err
}

func openWAL(dir string, logger hclog.Logger) (*logStore, error) {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithSegmentSize(walSegmentSize), wal.WithLogger(logger.Named("wal")), wal.WithMetaStore(meta),
		wal.WithSegmentFiler(segment.NewFiler(dir, privateFS{walfs.New()})))
	if err == nil {
		err = os.Chmod(filepath.Join(dir, metadb.FileName), 0o600)
	}
	if err != nil {
		if w != nil {
			w.Close()
		}
		meta.Close()
		return nil, err
	}
	return &logStore{w, meta}, nil
}

// privateFS makes the segment files 0600 (raft-wal makes its files 0644):
// the log holds password hashes and the cluster secret, and the data dir's
// 0700 should not be their only guard.
type privateFS struct{ *walfs.FS }

func (p privateFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := p.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Join(dir, name), 0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// segmentFiles lists the WAL's segment files in dir.
func segmentFiles(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	return m
}

// openLog opens the node's log, making it (or moving raft.db into it) when
// there is none. Every entry is read once before Raft gets the log, on this
// goroutine, so that damage is an error naming the file, never a crash
// later. (recover compares the log with the applied mark.)
func openLog(dataDir string, logger hclog.Logger) (*logStore, error) {
	dir, meta := walDirOf(dataDir), walMetaOf(dataDir)
	// A repair that stopped between its two renames (rebuildWAL).
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(dir + ".old"); err == nil {
			if err := os.Rename(dir+".old", dir); err != nil {
				return nil, err
			}
			syncDir(filepath.Dir(dir))
		}
	}
	fi, err := os.Stat(meta)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := orphanSegments(dataDir); err != nil {
			return nil, err
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
		if err := checkMetaBuckets(meta); err != nil {
			return nil, err
		}
		sealed, err := sealedTail(dir)
		if err != nil {
			return nil, openFailed(meta, err)
		}
		if sealed {
			if err := rebuildWAL(dataDir, logger); err != nil {
				return nil, err
			}
		}
	}
	w, err := openWALGuarded(dir, logger)
	if err != nil {
		return nil, openFailed(meta, err)
	}
	if err := verifyLog(w, dataDir); err != nil {
		w.Close()
		return nil, err
	}
	// A move from raft.db that stopped after the rename.
	if err := os.Remove(boltLogOf(dataDir)); err == nil {
		syncDir(filepath.Dir(dir))
	}
	return w, nil
}

func openWALGuarded(dir string, logger hclog.Logger) (*logStore, error) {
	var w *logStore
	err := guarded(func() (err error) {
		w, err = openWAL(dir, logger)
		return err
	})
	return w, err
}

// openFailed words an error from raft-wal's open: a full disk or a failing
// one is not damage to move aside.
func openFailed(meta string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("open raft log %s: the disk is full (%v): free space and restart", filepath.Dir(meta), err)
	case errors.Is(err, syscall.EIO), errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("open raft log %s: %w", filepath.Dir(meta), err)
	}
	return damagedStore(meta, err.Error())
}

// checkMetaBuckets: raft-wal reads both buckets without looking (a missing
// one is a nil pointer inside NewRaft, where nothing can recover it).
func checkMetaBuckets(meta string) error {
	_, err := peekBolt(meta, func(tx *bbolt.Tx) error {
		for _, b := range []string{metadb.MetaBucket, metadb.StableBucket} {
			if tx.Bucket([]byte(b)) == nil {
				return fmt.Errorf("it has no %q bucket", b)
			}
		}
		return nil
	})
	return err
}

// sealedTail: raft-wal seals a segment the moment a write fills it and
// starts the next one on a goroutine of its own. A stop (or a crash) before
// that goroutine commits leaves a tail that is sealed on disk and open in
// the metadata; raft-wal then opens it and refuses every append, for good.
func sealedTail(dir string) (bool, error) {
	var m metadb.BoltMetaDB
	ps, err := m.Load(dir)
	m.Close()
	if err != nil {
		return false, err
	}
	n := len(ps.Segments)
	if n == 0 || !ps.Segments[n-1].SealTime.IsZero() {
		return false, nil
	}
	tail, err := segment.NewFiler(dir, walfs.New()).RecoverTail(ps.Segments[n-1])
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // raft-wal makes it again
	}
	if err != nil {
		return false, err
	}
	defer tail.Close()
	sealed, _, err := tail.Sealed()
	return sealed, err
}

// rebuildWAL copies the log and Raft's keys into a new WAL and puts it in
// the old one's place (the old kept as wal.old until the new is in).
func rebuildWAL(dataDir string, logger hclog.Logger) error {
	dir := walDirOf(dataDir)
	src, err := openWALGuarded(dir, logger)
	if err != nil {
		return openFailed(walMetaOf(dataDir), err)
	}
	first, _ := src.FirstIndex()
	last, _ := src.LastIndex()
	err = intoNewWAL(dataDir, src, first, last, logger)
	src.Close()
	if err != nil {
		return fmt.Errorf("rebuild the raft log in %s: %w", dir, err)
	}
	if err := os.Rename(dir, dir+".old"); err != nil {
		return err
	}
	if err := os.Rename(dir+".new", dir); err != nil {
		return err
	}
	syncDir(filepath.Dir(dir))
	logger.Warn("the raft log's last segment was sealed but still open (a stop while it filled): rebuilt the log", "entries", max(last+1, first)-first)
	return os.RemoveAll(dir + ".old")
}

// verifyLog reads every entry of the log: a segment cut short or written
// over fails raft-wal's checks or the entry's decoding. Entries all below
// the newest snapshot (a stop between a snapshot's install and Raft's
// deleting the log it replaces) are deleted, as Raft would have: the WAL
// takes only the entry after its last.
func verifyLog(w *logStore, dataDir string) error {
	meta := walMetaOf(dataDir)
	first, err := w.FirstIndex()
	if err != nil {
		return damagedStore(meta, err.Error())
	}
	last, err := w.LastIndex()
	if err != nil {
		return damagedStore(meta, err.Error())
	}
	metas, newest, err := newestSnapshot(dataDir)
	if err != nil {
		return err
	}
	if last > 0 && first > newest+1 {
		// Raft panics in NewRaft on a log that lacks an entry after the snapshot.
		return gapError(dataDir, walDirOf(dataDir), metas, logGap{newest + 1, first - 1})
	}
	if last == 0 {
		return nil
	}
	err = guarded(func() error {
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
	if err != nil {
		return err
	}
	if last < newest {
		if err := w.DeleteRange(first, last); err != nil {
			return openFailed(meta, err)
		}
	}
	return nil
}

// migrateBolt moves the log of an earlier build (DATA/raft/raft.db) into a
// new WAL: checked and opened as before, copied into DATA/raft/wal.new,
// renamed into place, then removed. A stop at any point leaves either
// raft.db alone (the copy starts again) or the whole WAL. Only the entries
// after the newest snapshot are copied: raft-boltdb keeps a follower's old
// entries below a snapshot it installed, with a gap, and the WAL holds one
// unbroken run.
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
	first, err := src.FirstIndex()
	if err != nil {
		return err
	}
	last, err := src.LastIndex()
	if err != nil {
		return err
	}
	metas, err := listSnapshots(dataDir)
	if err != nil {
		return err
	}
	if len(metas) > 0 {
		first = max(first, metas[0].Index+1)
	}
	if err := intoNewWAL(dataDir, src, first, last, logger); err != nil {
		return fmt.Errorf("move the raft log from %s to %s: %w (raft.db is unchanged; free space and restart)", old, walDirOf(dataDir), err)
	}
	if err := os.Rename(walDirOf(dataDir)+".new", walDirOf(dataDir)); err != nil {
		return err
	}
	syncDir(filepath.Dir(old))
	logger.Info("moved the raft log from raft.db into wal/", "entries", max(last+1, first)-first)
	return nil
}

// store is what a log is copied from.
type store interface {
	raft.LogStore
	raft.StableStore
}

// intoNewWAL writes entries first..last of src (none when last < first)
// and Raft's keys (those that were ever set) into a new WAL in wal.new.
func intoNewWAL(dataDir string, src store, first, last uint64, logger hclog.Logger) error {
	tmp := walDirOf(dataDir) + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	dst, err := openWAL(tmp, logger)
	if err != nil {
		return err
	}
	err = copyLog(dst, src, first, last)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

func copyLog(dst *logStore, src store, first, last uint64) error {
	const batchBytes = 1 << 20
	var batch []*raft.Log
	size := 0
	for i := first; i <= last && last > 0; i++ {
		l := new(raft.Log)
		if err := src.GetLog(i, l); err != nil {
			return fmt.Errorf("log entry %d: %w", i, err)
		}
		batch, size = append(batch, l), size+len(l.Data)+64
		if size >= batchBytes || i == last {
			if err := dst.StoreLogs(batch); err != nil {
				return err
			}
			batch, size = batch[:0], 0
		}
	}
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := src.GetUint64([]byte(k))
		if err != nil && !notFound(err) {
			return err
		}
		if err == nil && v != 0 {
			if err := dst.SetUint64([]byte(k), v); err != nil {
				return err
			}
		}
	}
	v, err := src.Get([]byte("LastVoteCand"))
	if err != nil && !notFound(err) {
		return err
	}
	if err == nil && len(v) > 0 {
		return dst.Set([]byte("LastVoteCand"), v)
	}
	return nil
}

// notFound: raft-boltdb's answer for a key never set (raft-wal answers
// nil, nil).
func notFound(err error) bool { return errors.Is(err, raftboltdb.ErrKeyNotFound) }

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
