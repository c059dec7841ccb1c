package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/hashicorp/raft-wal/metadb"
)

// A damaged data dir must stop the node with a message that says what to do,
// never crash it and never make it start a new cluster. bbolt maps raft.db
// into memory and trusts what it finds: a page past the end of a cut-short
// file faults (SIGBUS kills the process), and a garbage page makes bbolt
// panic, first at open, later on Raft's goroutines where nothing can recover
// it. So before the log is opened for writing, checkStore reads all of it
// once, read-only, on the calling goroutine, with faults turned into panics
// and panics into errors.

const catchUp = "restart with --join <gossip address of another node> to catch up from the others"

func damagedStore(path, why string) error {
	return fmt.Errorf("%s is damaged (%s): move %s aside and %s", path, oneLine(why), raftDirOf(path), catchUp)
}

func emptyStore(path string) error {
	return fmt.Errorf("%s is empty: move %s aside and %s", path, raftDirOf(path), catchUp)
}

// raftDirOf is DATA/raft for a file in it or in its wal/: the log, the
// applied mark and the term go aside together.
func raftDirOf(path string) string {
	d := filepath.Dir(path)
	if filepath.Base(d) == "wal" {
		d = filepath.Dir(d)
	}
	return d
}

func storeInUse(path string) error {
	return fmt.Errorf("%s is in use by another lintel process; stop it or choose another --data-dir", path)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// panicked is a panic or a memory fault caught by guarded.
type panicked struct{ v any }

func (p panicked) Error() string {
	if _, ok := p.v.(runtime.Error); ok {
		// A fault on the map: a page past the end of the file, or a page
		// number read from a page written over.
		return fmt.Sprintf("a page cannot be read: %v", p.v)
	}
	return fmt.Sprint(p.v)
}

// guarded runs fn with memory faults turned into panics (SetPanicOnFault is
// per goroutine, and bbolt reads the map on the caller's), and returns a
// panic as an error. A panic inside bbolt.Open leaks that handle's file and
// map; the caller reports the damage and the process exits.
func guarded(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = panicked{v}
		}
	}()
	return fn()
}

// openReadOnly opens path with bbolt, read-only. The shared lock waits at
// most 1 s for a running node's exclusive one, then fails with bbolt's
// ErrTimeout. With freelist, bbolt reads the freelist at open (so that a bad
// freelist page panics here, not in tx.Check's goroutine); without, the
// open reads the two meta pages only.
func openReadOnly(path string, freelist bool) (*bbolt.DB, error) {
	return bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second, PreLoadFreelist: freelist})
}

// checkStore checks raft.db before the store opens it for writing: a missing
// file is a new store; an empty one, one cut short, or one whose pages do
// not hold together is an error naming the file. It reads every page the
// log uses once (see consensus/DESIGN.md for what that costs). It also
// checks the log against the newest snapshot in DATA/snapshots (path is
// DATA/raft/raft.db): Raft panics in NewRaft on a log that lacks an entry
// after it, which a damaged snapshot meta.json (hashicorp's snapshot store
// skips it without a word) or a snapshot moved aside leaves.
func checkStore(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		// bbolt would make a new store of it; the node decides from
		// node.json whether that is right (HasState says no state).
		return emptyStore(path)
	}
	dataDir := filepath.Dir(filepath.Dir(path))
	metas, newest, err := newestSnapshot(dataDir)
	if err != nil {
		return err
	}
	var gap logGap
	switch err := checkBolt(path, newest); {
	case errors.As(err, &gap):
		return gapError(dataDir, path, metas, gap)
	default:
		return err
	}
}

// checkBolt reads every page of the bbolt file at path once, read-only, on
// this goroutine (see checkStore); a raft-boltdb "logs" bucket is decoded
// entry by entry against the newest snapshot's index. A gap comes back as a
// logGap; other damage as an error naming the file.
func checkBolt(path string, newest uint64) error {
	err := guarded(func() error {
		// First what the meta page says against the file, so that a file cut
		// short is named as such rather than by the fault it would cause.
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		size, err := checkOuter(path, f)
		if err != nil {
			return err
		}
		db, err := openReadOnly(path, true)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bbolt.Tx) error { return checkTx(tx, f, size, newest) })
	})
	var gap logGap
	switch {
	case errors.Is(err, bberrors.ErrTimeout):
		return storeInUse(path)
	case errors.As(err, &gap):
		return gap
	case err != nil:
		return damagedStore(path, err.Error())
	}
	return nil
}

// checkOuter checks size, reach and the fixed pages, and returns the size.
func checkOuter(path string, f *os.File) (int64, error) {
	db, err := openReadOnly(path, false)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	size, err := checkSize(db, path)
	if err != nil {
		return 0, err
	}
	return size, db.View(func(tx *bbolt.Tx) error {
		if err := checkReach(tx, size); err != nil {
			return err
		}
		return checkFixedPages(tx, f)
	})
}

// checkSize: bbolt grows the file in whole pages and never below the 4 it
// starts with; any other size was cut short (or written over).
func checkSize(db *bbolt.DB, path string) (int64, error) {
	fi, err := os.Stat(path) // again: now under the lock
	if err != nil {
		return 0, err
	}
	size, ps := fi.Size(), int64(db.Info().PageSize)
	if size < 4*ps || size%ps != 0 {
		return 0, fmt.Errorf("%d bytes is not a whole number of %d-byte pages, at least 4: the file was cut short", size, ps)
	}
	return size, nil
}

// checkTx walks every bucket, key and value on this goroutine, so a bad page
// panics or faults here; then bbolt's own check compares the pages in use
// with the freelist (a page both free and in use would be overwritten).
// tx.Check runs on a goroutine of its own, where a panic kills the process:
// it runs only once the walk has read every tree page it reads, and
// checkFixedPages the three others (both meta pages and the freelist).
func checkTx(tx *bbolt.Tx, f *os.File, size int64, newest uint64) error {
	// Again: the file could have changed between the two opens.
	if err := checkReach(tx, size); err != nil {
		return err
	}
	if err := checkFixedPages(tx, f); err != nil {
		return err
	}
	// The walk visits pages in tree order, which on a cold cache is a
	// random read per page (5 s for 260 MB on the development machine); one
	// sequential read first puts the file in the page cache (1 s).
	if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, tx.Size())); err != nil {
		return err
	}
	ps := tx.DB().Info().PageSize
	var sum byte
	var walk func(b *bbolt.Bucket) error
	walk = func(b *bbolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if c := b.Bucket(k); c != nil {
					return walk(c)
				}
				return nil
			}
			// One byte per page touches every overflow page of a large value.
			for i := 0; i < len(v); i += ps {
				sum ^= v[i]
			}
			if len(v) > 0 {
				sum ^= v[len(v)-1]
			}
			return nil
		})
	}
	err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		if bytes.Equal(name, bucketLogs) {
			return checkLogs(b, newest)
		}
		return walk(b)
	})
	if err != nil {
		return err
	}
	runtime.KeepAlive(sum) // the walk must read every page
	var first error
	n := 0
	for err := range tx.Check() {
		// A page neither in use nor free is only lost space: bbolt never
		// hands it out, so it does not cost the node a rejoin.
		if strings.Contains(err.Error(), "unreachable unfreed") {
			continue
		}
		if first == nil {
			first = err
		}
		n++
	}
	if n > 1 {
		return fmt.Errorf("%v (and %d more)", first, n-1)
	}
	return first
}

// bbolt's page header and meta page (internal/common): the header is id
// u64, flags u16, count u16, overflow u32; the meta follows it with magic,
// version, page size and flags (u32 each), the root bucket (two u64), then
// freelist, high water mark and txid (u64 each), in the machine's byte order.
const (
	pageHeader   = 16
	metaFlag     = 0x04
	freelistFlag = 0x10
	metaMagic    = 0xED0CDAED
	noFreelist   = ^uint64(0)
)

// checkFixedPages reads, from the file, the headers bbolt asserts on when
// tx.Check reads the meta pages and the freelist page: each names its own
// id and carries the right type.
func checkFixedPages(tx *bbolt.Tx, f *os.File) error {
	ps := int64(tx.DB().Info().PageSize)
	le := binary.NativeEndian
	header := func(id uint64, flag uint16, what string) ([]byte, error) {
		b := make([]byte, 80)
		if _, err := f.ReadAt(b, int64(id)*ps); err != nil {
			return nil, fmt.Errorf("%s (page %d): %v", what, id, err)
		}
		if got := le.Uint64(b); got != id || le.Uint16(b[8:]) != flag {
			return nil, fmt.Errorf("%s (page %d) is written over: it says page %d, type %#x", what, id, got, le.Uint16(b[8:]))
		}
		return b, nil
	}
	freelist := noFreelist
	for id := uint64(0); id < 2; id++ {
		b, err := header(id, metaFlag, "meta page")
		if err != nil {
			return err
		}
		m := b[pageHeader:]
		if le.Uint32(m) == metaMagic && le.Uint64(m[48:]) == uint64(tx.ID()) {
			freelist = le.Uint64(m[32:])
		}
	}
	if freelist != noFreelist {
		if _, err := header(freelist, freelistFlag, "freelist"); err != nil {
			return err
		}
	}
	return nil
}

// checkReach: the pages in use lie inside the file (a page past its end
// faults when read).
func checkReach(tx *bbolt.Tx, size int64) error {
	if tx.Size() > size {
		return fmt.Errorf("the file has %d bytes but its pages reach to %d: the file was cut short", size, tx.Size())
	}
	return nil
}

// checkLogs decodes every entry of the log as raft-boltdb does (msgpack of a
// raft.Log, keyed by the big-endian index), in one pass with one decoder:
// bytes written over inside a page leave the tree whole, and Raft panics on
// an entry it cannot read (it reads every entry after the snapshot at open).
// After the newest snapshot the entries must follow each other; below it a
// gap is normal (a follower that installed a snapshot keeps trailing entries
// below it and appends after it).
func checkLogs(b *bbolt.Bucket, newest uint64) error {
	// Data and Extensions are skipped, not copied (any bytes of the length
	// the entry declares decode), which halves the time on large entries.
	type logHead struct {
		Index      uint64
		Term       uint64
		Type       raft.LogType
		AppendedAt time.Time
	}
	var h codec.MsgpackHandle
	dec := codec.NewDecoderBytes(nil, &h)
	want := newest + 1
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 8 || v == nil {
			return fmt.Errorf("the log holds a key %x that is not an entry", k)
		}
		i := binary.BigEndian.Uint64(k)
		if i > newest {
			if i != want {
				return logGap{want, i - 1}
			}
			want++
		}
		var l logHead
		dec.ResetBytes(v)
		if err := dec.Decode(&l); err != nil {
			return fmt.Errorf("log entry %d: %v", i, err)
		}
		if l.Index != i {
			return fmt.Errorf("log entry %d says it is entry %d", i, l.Index)
		}
		return nil
	})
}

// logGap: entries from..to are missing after the newest snapshot.
type logGap struct{ from, to uint64 }

func (g logGap) Error() string { return fmt.Sprintf("log entries %d to %d are missing", g.from, g.to) }

// raft-boltdb's layout, read directly so that HasState needs no write: the
// "logs" bucket keyed by the big-endian index, the "conf" bucket holding
// Raft's CurrentTerm.
var (
	bucketLogs     = []byte("logs")
	bucketConf     = []byte("conf")
	keyCurrentTerm = []byte("CurrentTerm")
)

// hasState is HasState: whether dataDir holds Raft state, read-only and
// cheaply (the meta pages, the current term and the last log key; the full
// check runs when Open opens the log). A missing or empty raft.db holds
// none; the node tells from node.json whether it should have.
func hasState(dataDir string) (bool, error) {
	meta := walMetaOf(dataDir)
	if _, err := os.Stat(walDirOf(dataDir)); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(walDirOf(dataDir) + ".old"); err == nil {
			// A rebuild that stopped between its renames: Open moves it back.
			meta = filepath.Join(walDirOf(dataDir)+".old", metadb.FileName)
		}
	}
	if _, err := os.Stat(meta); errors.Is(err, os.ErrNotExist) {
		if err := orphanSegments(dataDir); err != nil {
			return false, err
		}
		return hasBoltState(dataDir)
	}
	var term uint64
	found, err := peekBolt(meta, func(tx *bbolt.Tx) error {
		// raft-wal keeps Raft's keys in "stable", integers little-endian.
		if b := tx.Bucket([]byte(metadb.StableBucket)); b != nil {
			if v := b.Get(keyCurrentTerm); len(v) == 8 {
				term = binary.LittleEndian.Uint64(v)
			}
		}
		return nil
	})
	if err != nil || !found {
		return false, err
	}
	// Raft sets the term before it stores an entry (a bootstrap, or a
	// leader's first append).
	return loggedOrSnapshot(dataDir, term > 0)
}

// hasBoltState is hasState for a data dir of an earlier build, whose log is
// raft.db until Open moves it into the WAL.
func hasBoltState(dataDir string) (bool, error) {
	var term, lastLog uint64
	found, err := peekBolt(boltLogOf(dataDir), func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketConf); b != nil {
			if v := b.Get(keyCurrentTerm); len(v) == 8 {
				term = binary.BigEndian.Uint64(v)
			}
		}
		if b := tx.Bucket(bucketLogs); b != nil {
			if k, _ := b.Cursor().Last(); len(k) == 8 {
				lastLog = binary.BigEndian.Uint64(k)
			}
		}
		return nil
	})
	if err != nil || !found {
		return false, err
	}
	return loggedOrSnapshot(dataDir, term > 0 || lastLog > 0)
}

// loggedOrSnapshot: the log says it took part in a cluster, or a snapshot
// is there.
func loggedOrSnapshot(dataDir string, logged bool) (bool, error) {
	metas, err := listSnapshots(dataDir)
	if err != nil {
		return false, err
	}
	return logged || len(metas) > 0, nil
}

// peekBolt reads the bbolt file at path read-only and cheaply: its meta
// pages, its size against them, then fn in a view, all guarded. A missing
// or empty file is not found (bbolt cannot open an empty one read-only);
// a running node's lock is the in-use error, and damage (or fn's error) an
// error naming the file.
func peekBolt(path string, fn func(*bbolt.Tx) error) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Size() == 0 {
		return false, nil
	}
	err = guarded(func() error {
		db, err := openReadOnly(path, false)
		if err != nil {
			return err
		}
		defer db.Close()
		size, err := checkSize(db, path)
		if err != nil {
			return err
		}
		return db.View(func(tx *bbolt.Tx) error {
			if err := checkReach(tx, size); err != nil {
				return err
			}
			return fn(tx)
		})
	})
	if errors.Is(err, bberrors.ErrTimeout) {
		return false, storeInUse(path)
	}
	if err != nil {
		return false, damagedStore(path, err.Error())
	}
	return true, nil
}

// orphanSegments: wal-meta.db is missing but segment files are left (raft-wal
// would start an empty log and delete them).
func orphanSegments(dataDir string) error {
	if segs := segmentFiles(walDirOf(dataDir)); len(segs) > 0 {
		return damagedStore(walMetaOf(dataDir), fmt.Sprintf("it is missing, and %d segment files of the log are left", len(segs)))
	}
	return nil
}

// listSnapshots lists DATA/snapshots as Raft will, newest first; a snapshot
// whose meta.json cannot be read is left out, as Raft leaves it out.
func listSnapshots(dataDir string) ([]*raft.SnapshotMeta, error) {
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 2, hclog.NewNullLogger())
	if err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list snapshots in %s: %w", filepath.Join(dataDir, "snapshots"), err)
	}
	return metas, nil
}

// newestSnapshot lists the snapshots, checks the newest (checkNewestSnapshot)
// and returns its index (0: none).
func newestSnapshot(dataDir string) ([]*raft.SnapshotMeta, uint64, error) {
	metas, err := listSnapshots(dataDir)
	if err != nil {
		return nil, 0, err
	}
	if err := checkNewestSnapshot(dataDir, metas); err != nil {
		return nil, 0, err
	}
	if len(metas) == 0 {
		return metas, 0, nil
	}
	return metas, metas[0].Index, nil
}

// both is the advice when the log and the snapshots no longer fit: moving
// only the snapshots aside (or only raft/) leaves the same gap.
func both(dataDir string) string {
	return fmt.Sprintf("move %s and %s aside and %s", filepath.Join(dataDir, "raft"), filepath.Join(dataDir, "snapshots"), catchUp)
}

// checkNewestSnapshot: the newest snapshot's state file has the size its
// meta.json says (other damage fails the snapshot store's CRC at restore).
func checkNewestSnapshot(dataDir string, metas []*raft.SnapshotMeta) error {
	if len(metas) == 0 {
		return nil
	}
	m := metas[0]
	dir := filepath.Join(dataDir, "snapshots", m.ID)
	fi, err := os.Stat(filepath.Join(dir, "state.bin"))
	if err != nil {
		return fmt.Errorf("snapshot %s is damaged (%v): %s", dir, err, both(dataDir))
	}
	if fi.Size() != m.Size {
		return fmt.Errorf("snapshot %s is damaged (state.bin has %d bytes, meta.json says %d): %s", dir, fi.Size(), m.Size, both(dataDir))
	}
	return nil
}

func gapError(dataDir, log string, metas []*raft.SnapshotMeta, g logGap) error {
	what := "there is no readable snapshot"
	if len(metas) > 0 {
		what = fmt.Sprintf("the newest readable snapshot ends at entry %d", metas[0].Index)
	}
	return fmt.Errorf("%s lacks log entries %d to %d, and %s in %s (a snapshot is damaged or was moved aside): %s",
		log, g.from, g.to, what, filepath.Join(dataDir, "snapshots"), both(dataDir))
}
