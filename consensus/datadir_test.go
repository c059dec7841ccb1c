package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/hashicorp/raft-wal/migrate"
	"go.etcd.io/bbolt"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// A data dir with a real Raft log: Init and 300 sites, applied and closed.
// Built once and copied for each damage.
var sample struct {
	once sync.Once
	dir  string
	err  error
}

func sampleDataDir(t *testing.T) string {
	t.Helper()
	sample.once.Do(func() {
		dir, err := os.MkdirTemp("", "lintel-datadir-")
		if err != nil {
			sample.err = err
			return
		}
		sample.dir = dir
		r := open(t, "n1", dir)
		if err := r.Bootstrap(); err != nil {
			sample.err = err
			return
		}
		waitLeader(t, r)
		mustApply(t, r, initCmd())
		for i := 1; i <= 300; i++ {
			mustApply(t, r, cmd(i, &command.CreateSite{ID: fmt.Sprintf("s%d", i), AccountID: "acc", Name: fmt.Sprintf("Site %d %s", i, strings.Repeat("x", 80))}))
		}
		sample.err = r.Close()
	})
	if sample.err != nil {
		t.Fatal(sample.err)
	}
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(sample.dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// boltDataDir is the sample as an earlier build left it: the log in
// DATA/raft/raft.db (raft-boltdb), which Open checks and moves into the WAL.
func boltDataDir(t *testing.T) string {
	t.Helper()
	dir := sampleDataDir(t)
	toBolt(t, dir)
	return dir
}

// toBolt turns dir's WAL back into a raft.db, entries and Raft's keys.
func toBolt(t testing.TB, dir string) {
	t.Helper()
	w, err := openWAL(walDirOf(dir), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	b, err := raftboltdb.New(raftboltdb.Options{Path: boltLogOf(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.CopyLogs(context.Background(), b, w, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, _ := w.GetUint64([]byte(k))
		b.SetUint64([]byte(k), v)
	}
	v, _ := w.Get([]byte("LastVoteCand"))
	b.Set([]byte("LastVoteCand"), v)
	b.Close()
	w.Close()
	if err := os.RemoveAll(walDirOf(dir)); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sample.dir != "" {
		os.RemoveAll(sample.dir)
	}
	os.Exit(code)
}

// layout reads the file's size, page size and the bytes its pages reach to.
func layout(t *testing.T, path string) (size, pageSize, used int64) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })
	return fi.Size(), int64(db.Info().PageSize), used
}

func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func openErr(dir string) error {
	r, err := Open(Config{NodeID: "n1", DataDir: dir, Bind: "127.0.0.1:0", LogLevel: "error", LogOutput: io.Discard})
	if err == nil {
		r.Close()
	}
	return err
}

// wantAdvice: one line, naming the file, saying what to do.
func wantAdvice(t *testing.T, err error, file string, what ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming %s", file)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, w := range append([]string{file}, what...) {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
}

func TestOpenRefusesDamagedLog(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, db string)
		what   []string
	}{
		{"cut to half its pages", func(t *testing.T, db string) {
			size, ps, used := layout(t, db)
			half := used / 2 / ps * ps
			t.Logf("file %d bytes, pages reach %d, page size %d; cut to %d", size, used, ps, half)
			os.Truncate(db, half)
		}, []string{"is damaged", "cut short"}},
		{"cut one page short of its pages", func(t *testing.T, db string) {
			// (bbolt grows the file ahead of its pages: a cut in that free
			// tail loses nothing, and where the tail starts depends on the log.)
			_, ps, used := layout(t, db)
			os.Truncate(db, used/ps*ps-ps)
		}, []string{"is damaged"}},
		{"cut inside a page", func(t *testing.T, db string) {
			size, _, _ := layout(t, db)
			os.Truncate(db, size-100)
		}, []string{"is damaged", "whole number of"}},
		{"zeroed pages in the middle", func(t *testing.T, db string) {
			_, ps, used := layout(t, db)
			from, to := used/ps/4, used/ps/2
			t.Logf("zero pages %d..%d of %d", from, to, used/ps)
			overwrite(t, db, from*ps, make([]byte, (to-from)*ps))
		}, []string{"is damaged"}},
		{"empty", func(t *testing.T, db string) {
			os.Truncate(db, 0)
		}, []string{"is empty"}},
		{"garbage meta pages", func(t *testing.T, db string) {
			_, ps, _ := layout(t, db)
			g := make([]byte, 2*ps)
			for i := range g {
				g[i] = byte(rand.IntN(256))
			}
			overwrite(t, db, 0, g)
		}, []string{"is damaged"}},
		{"zeroed bytes inside a log entry", func(t *testing.T, db string) {
			// A sector zeroed inside a leaf page leaves the tree whole; only
			// decoding the entries finds it. Every copy of one site's name
			// (the live one and any in free pages) loses the bytes before it.
			b, err := os.ReadFile(db)
			if err != nil {
				t.Fatal(err)
			}
			marker := []byte("Site 150 x")
			n := 0
			for off := 0; ; {
				i := bytes.Index(b[off:], marker)
				if i < 0 {
					break
				}
				at := off + i
				// The entry's msgpack map starts just before "AppendedAt".
				h := bytes.LastIndex(b[:at], []byte("AppendedAt"))
				if h < 0 || at-h > 400 {
					t.Fatal("entry header not found")
				}
				overwrite(t, db, int64(h-2), make([]byte, 32))
				n++
				off = at + len(marker)
			}
			if n == 0 {
				t.Fatal("marker not found")
			}
		}, []string{"is damaged", "log entry"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := boltDataDir(t)
			db := filepath.Join(dir, "raft", "raft.db")
			c.damage(t, db)
			err := openErr(dir)
			wantAdvice(t, err, db, append([]string{"move " + filepath.Join(dir, "raft") + " aside", "--join"}, c.what...)...)
			t.Logf("Open: %v", err)
			// HasState reads less, but must not crash either; an empty file
			// holds no state (the node decides from node.json).
			has, herr := HasState(dir)
			if c.name == "empty" {
				if has || herr != nil {
					t.Errorf("HasState on an empty raft.db = %v, %v; want false, nil", has, herr)
				}
			} else if herr != nil {
				wantAdvice(t, herr, db, "--join")
			}
			t.Logf("HasState: %v %v", has, herr)
		})
	}
}

// Every page of the file in turn, zeroed and then filled with garbage: the
// store opens (a free page) or the open fails naming the file; the process
// never crashes and no damage reaches Raft.
func TestOpenStoreSurvivesEachPageDamaged(t *testing.T) {
	src := filepath.Join(boltDataDir(t), "raft", "raft.db")
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	_, ps, used := layout(t, src)
	reasons := map[string]int{}
	for _, fill := range []string{"zero", "garbage"} {
		for id := int64(0); id < used/ps; id++ {
			db := filepath.Join(t.TempDir(), "raft.db")
			b := bytes.Clone(orig)
			page := b[id*ps : (id+1)*ps]
			for i := range page {
				page[i] = 0
				if fill == "garbage" {
					page[i] = byte(rand.IntN(256))
				}
			}
			if err := os.WriteFile(db, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := openStore(db)
			if err == nil {
				s.Close()
				reasons["opened"]++
				continue
			}
			wantAdvice(t, err, db, "is damaged", "--join")
			why := err.Error()
			why = why[strings.Index(why, "(")+1:]
			if i := strings.IndexAny(why, ":0123456789"); i > 0 {
				why = why[:i]
			}
			reasons[fill+": "+why]++
		}
	}
	t.Logf("%d pages: %v", used/ps, reasons)
}

// A freelist that lists a page in use (bbolt would hand it out again and
// overwrite live data) is found by bbolt's own check.
func TestOpenRefusesFreelistListingPageInUse(t *testing.T) {
	dir := boltDataDir(t)
	db := filepath.Join(dir, "raft", "raft.db")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	_, ps, _ := layout(t, db)
	le := binary.NativeEndian
	// The newer of the two meta pages: its root page is in use.
	var meta []byte
	for id := int64(0); id < 2; id++ {
		m := b[id*ps+16:]
		if meta == nil || le.Uint64(m[48:]) > le.Uint64(meta[48:]) {
			meta = m
		}
	}
	root, freelist := le.Uint64(meta[16:]), int64(le.Uint64(meta[32:]))
	fl := b[freelist*ps:]
	if n := le.Uint16(fl[10:]); n == 0 || n == 0xffff {
		t.Skipf("freelist holds %d ids", n)
	}
	n := le.Uint16(fl[10:])
	// One page dropped from the freelist is only lost space: the node starts.
	leak := boltDataDir(t)
	overwrite(t, filepath.Join(leak, "raft", "raft.db"), freelist*ps+10, binary.NativeEndian.AppendUint16(nil, n-1))
	if err := openErr(leak); err != nil {
		t.Errorf("a page leaked from the freelist: %v", err)
	}
	overwrite(t, db, freelist*ps+16, binary.NativeEndian.AppendUint64(nil, root))
	err = openErr(dir)
	wantAdvice(t, err, db, "is damaged", "reachable freed", "--join")
	t.Log(err)
}

// The open log keeps the existing in-use answer, from HasState and Open.
func TestDamageCheckKeepsInUseError(t *testing.T) {
	dir := sampleDataDir(t)
	r := open(t, "n1", dir)
	defer r.Close()
	db := walMetaOf(dir)
	for name, err := range map[string]error{"Open": openErr(dir), "HasState": func() error { _, err := HasState(dir); return err }()} {
		if err == nil || !strings.Contains(err.Error(), db+" is in use by another lintel process") {
			t.Errorf("%s on a data dir in use: %v", name, err)
		}
	}
}

func TestHasStateOnSampleLog(t *testing.T) {
	if has, err := HasState(sampleDataDir(t)); !has || err != nil {
		t.Fatalf("HasState = %v, %v", has, err)
	}
	if has, err := HasState(boltDataDir(t)); !has || err != nil {
		t.Fatalf("HasState on a raft.db = %v, %v", has, err)
	}
	// A new store (no Bootstrap yet) holds none.
	dir := t.TempDir()
	r := open(t, "n1", dir)
	r.Close()
	if has, err := HasState(dir); has || err != nil {
		t.Fatalf("HasState on a store never bootstrapped = %v, %v", has, err)
	}
}

// guarded turns the fault of reading a mapped page past the end of a file
// (SIGBUS, which would kill the process) into an error.
func TestGuardedTurnsFaultIntoError(t *testing.T) {
	// What bbolt does with a file cut short, without depending on where a
	// given raft.db keeps its pages: a map over two pages of a file that
	// now holds one, and a read of the second (SIGBUS).
	p := filepath.Join(t.TempDir(), "cut")
	ps := os.Getpagesize()
	if err := os.WriteFile(p, make([]byte, 2*ps), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, 2*ps, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	if err := os.Truncate(p, int64(ps)); err != nil {
		t.Fatal(err)
	}
	var sink byte
	err = guarded(func() error {
		sink += m[ps+1]
		return nil
	})
	var pe panicked
	if !errors.As(err, &pe) {
		t.Fatalf("guarded returned %v, want the fault as an error", err)
	}
	if _, ok := pe.v.(runtime.Error); !ok {
		t.Fatalf("guarded caught %#v, want a runtime error (the fault)", pe.v)
	}
	t.Log(err, sink)
}

// A damaged snapshot: a state.bin cut short, a meta.json written over, or the
// newest snapshot moved aside while the log was compacted past it.
func TestDamagedSnapshot(t *testing.T) {
	build := func(t *testing.T) (dir, snap string, index uint64) {
		dir = t.TempDir()
		r := open(t, "n1", dir)
		r.Bootstrap()
		waitLeader(t, r)
		mustApply(t, r, initCmd())
		for i := 1; i <= 40; i++ {
			mustApply(t, r, cmd(i, &command.CreateSite{ID: fmt.Sprintf("s%d", i), AccountID: "acc", Name: fmt.Sprintf("Site %d", i)}))
			if i == 30 {
				if err := r.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
		}
		r.Close()
		snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		metas, err := snaps.List()
		if err != nil || len(metas) != 1 {
			t.Fatalf("snapshots %v %v", metas, err)
		}
		return dir, filepath.Join(dir, "snapshots", metas[0].ID), metas[0].Index
	}
	// compact deletes the log up to a few entries before the snapshot, as
	// Raft does once it keeps fewer trailing entries than the log holds.
	deleteRange := func(t *testing.T, dir string, from, to uint64) {
		s, err := openWAL(walDirOf(dir), hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.DeleteRange(from, to); err != nil {
			t.Fatal(err)
		}
	}
	compact := func(t *testing.T, dir string, index uint64) { deleteRange(t, dir, 1, index-5) }

	t.Run("state.bin cut short", func(t *testing.T) {
		dir, snap, _ := build(t)
		state := filepath.Join(snap, "state.bin")
		fi, _ := os.Stat(state)
		os.Truncate(state, fi.Size()/2)
		// The size against meta.json, before the snapshot store reads it;
		// HasState reads the log only.
		wantAdvice(t, openErr(dir), snap, "state.bin has", filepath.Join(dir, "raft"), filepath.Join(dir, "snapshots"), "--join")
		if has, err := HasState(dir); !has || err != nil {
			t.Errorf("HasState = %v, %v", has, err)
		}
	})
	t.Run("state.bin written over", func(t *testing.T) {
		dir, snap, _ := build(t)
		state := filepath.Join(snap, "state.bin")
		overwrite(t, state, 10, bytes.Repeat([]byte{0xff}, 64))
		// The snapshot store's CRC check at Open, then recover's message.
		wantAdvice(t, openErr(dir), snap, "cannot be opened", "CRC", filepath.Join(dir, "raft"), filepath.Join(dir, "snapshots"), "--join")
	})
	t.Run("meta.json written over, log compacted", func(t *testing.T) {
		dir, snap, index := build(t)
		compact(t, dir, index)
		if err := os.WriteFile(filepath.Join(snap, "meta.json"), []byte("{garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Raft would panic in NewRaft.
		err := openErr(dir)
		wantAdvice(t, err, walDirOf(dir), "lacks log entries 1 to", "no readable snapshot", filepath.Join(dir, "snapshots"), "--join")
		t.Log(err)
	})
	t.Run("snapshot moved aside, log compacted", func(t *testing.T) {
		dir, snap, index := build(t)
		compact(t, dir, index)
		if err := os.Rename(snap, filepath.Join(dir, "aside")); err != nil {
			t.Fatal(err)
		}
		wantAdvice(t, openErr(dir), walDirOf(dir), "lacks log entries", "--join")
	})
	t.Run("entries missing after the snapshot", func(t *testing.T) {
		// The WAL deletes only a prefix or a suffix: the log starts too late.
		dir, _, index := build(t)
		deleteRange(t, dir, 1, index+3)
		wantAdvice(t, openErr(dir), walDirOf(dir), fmt.Sprintf("lacks log entries %d to %d", index+1, index+3),
			fmt.Sprintf("snapshot ends at entry %d", index), "--join")
	})
	t.Run("entries missing after the snapshot, raft.db", func(t *testing.T) {
		// A log of an earlier build can have a gap anywhere.
		dir, _, index := build(t)
		toBolt(t, dir)
		s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft", "raft.db")})
		if err != nil {
			t.Fatal(err)
		}
		s.DeleteRange(index+2, index+3)
		s.Close()
		wantAdvice(t, openErr(dir), filepath.Join(dir, "raft", "raft.db"), fmt.Sprintf("lacks log entries %d to %d", index+2, index+3),
			fmt.Sprintf("snapshot ends at entry %d", index), "--join")
	})
	t.Run("entries missing below the snapshot", func(t *testing.T) {
		// A follower that installed a snapshot keeps trailing entries below
		// it and appends after it: a gap Raft never reads.
		dir, _, _ := build(t)
		deleteRange(t, dir, 1, 10)
		if has, err := HasState(dir); !has || err != nil {
			t.Fatalf("HasState = %v, %v", has, err)
		}
		if err := openErr(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("entries missing below the snapshot, raft.db", func(t *testing.T) {
		// A follower of an earlier build that installed a snapshot: its
		// raft.db keeps old entries, a gap, then those after the snapshot.
		dir, _, _ := build(t)
		toBolt(t, dir)
		s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft", "raft.db")})
		if err != nil {
			t.Fatal(err)
		}
		s.DeleteRange(5, 10)
		s.Close()
		if has, err := HasState(dir); !has || err != nil {
			t.Fatalf("HasState = %v, %v", has, err)
		}
		r := open(t, "n1", dir)
		defer r.Close()
		var n int
		r.Read(func(s *state.State) { n = s.Sites.Len() })
		if n != 40 {
			t.Fatalf("%d sites after the move, want 40", n)
		}
		waitLeader(t, r)
		mustApply(t, r, cmd(41, &command.CreateSite{ID: "s41", AccountID: "acc", Name: "Site 41"}))
	})
	t.Run("log ends below the snapshot", func(t *testing.T) {
		// A stop between a snapshot's install and Raft's deleting the log
		// it replaces: the WAL takes only the entry after its last one.
		dir, _, index := build(t)
		s, err := openWAL(walDirOf(dir), hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		last, _ := s.LastIndex()
		if err := s.DeleteRange(index-3, last); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// The install set the applied mark to the snapshot.
		m, err := openAppliedMark(filepath.Join(dir, "raft", "applied"))
		if err != nil {
			t.Fatal(err)
		}
		m.Reset(index)
		m.Close()
		r := open(t, "n1", dir)
		defer r.Close()
		waitLeader(t, r)
		mustApply(t, r, cmd(41, &command.CreateSite{ID: "s41", AccountID: "acc", Name: "Site 41"}))
		var n int
		r.Read(func(s *state.State) { n = s.Sites.Len() })
		if n != 31 {
			t.Fatalf("%d sites, want the snapshot's 30 and the new one", n)
		}
	})
	t.Run("meta.json written over, log whole", func(t *testing.T) {
		// The log still holds everything: the node rebuilds from it.
		dir, snap, _ := build(t)
		os.WriteFile(filepath.Join(snap, "meta.json"), []byte("{garbage"), 0o600)
		if has, err := HasState(dir); !has || err != nil {
			t.Fatalf("HasState = %v, %v", has, err)
		}
		r := open(t, "n1", dir)
		defer r.Close()
		waitLeader(t, r)
		if err := r.Barrier(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		var n int
		r.Read(func(s *state.State) { n = s.Sites.Len() })
		if n != 40 {
			t.Fatalf("%d sites after rebuilding from the log, want 40", n)
		}
	})
}

// BenchmarkCheckStore times the checks on a log of realistic size, written
// through raft-boltdb as Raft writes it: LINTEL_DATADIR_BENCH_MB of entries
// (200) of LINTEL_DATADIR_BENCH_ENTRY bytes (8192). The file is in the page
// cache (just written): a node starting after a reboot reads it from disk.
//
//	go test -run '^$' -bench CheckStore -benchtime 3x ./consensus/
func BenchmarkCheckStore(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "raft", "raft.db")
	os.MkdirAll(filepath.Dir(path), 0o700)
	s, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	n, entry := writeBenchLog(b, s)
	s.Close()
	fi, _ := os.Stat(path)
	b.Logf("%d entries of %d bytes: raft.db %d MB", n, entry, fi.Size()>>20)
	var check, has time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := checkStore(path); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if ok, err := HasState(dir); !ok || err != nil {
			b.Fatal(ok, err)
		}
		check += t1.Sub(t0)
		has += time.Since(t1)
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(check), "checkStore-s")
	b.ReportMetric(per(has), "HasState-s")
	b.ReportMetric(per(check)/float64(fi.Size())*100e6, "checkStore-s/100MB")
}

// writeBenchLog fills s as Raft would, in appends of 256: LINTEL_DATADIR_BENCH_MB
// (200) of entries of LINTEL_DATADIR_BENCH_ENTRY bytes (8192), and the term.
func writeBenchLog(b *testing.B, s store) (n, entry int) {
	mb, entry := envInt("LINTEL_DATADIR_BENCH_MB", 200), envInt("LINTEL_DATADIR_BENCH_ENTRY", 8192)
	data := make([]byte, entry)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	n = mb << 20 / entry
	for i := 0; i < n; {
		var batch []*raft.Log
		for ; i < n && len(batch) < 256; i++ {
			batch = append(batch, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()})
		}
		if err := s.StoreLogs(batch); err != nil {
			b.Fatal(err)
		}
	}
	s.SetUint64(keyCurrentTerm, 1)
	return n, entry
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
