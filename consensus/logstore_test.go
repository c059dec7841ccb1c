package consensus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// what a node serves after it opens dir: applied index, digest, last index.
type served struct {
	applied, last uint64
	digest        string
}

func servedBy(t *testing.T, r *Raft) served {
	t.Helper()
	var d string
	var err error
	r.Read(func(s *state.State) { d, err = s.Digest() })
	if err != nil {
		t.Fatal(err)
	}
	return served{r.AppliedIndex(), r.LastIndex(), d}
}

// A data dir of an earlier build (the log in raft.db) opens into the WAL
// with everything it held, and raft.db is gone; a move that stopped part
// way starts again or finishes.
func TestOpenMovesBoltLogIntoWAL(t *testing.T) {
	ref := open(t, "n1", sampleDataDir(t))
	want := servedBy(t, ref)
	ref.Close()
	if want.applied < 301 {
		t.Fatalf("sample applied %d entries, want 301 or more", want.applied)
	}

	check := func(t *testing.T, dir string) {
		t.Helper()
		if has, err := HasState(dir); !has || err != nil {
			t.Fatalf("HasState = %v, %v", has, err)
		}
		r := open(t, "n1", dir)
		got := servedBy(t, r)
		if got != want {
			r.Close()
			t.Fatalf("after the move the node serves %+v, want %+v", got, want)
		}
		if _, err := os.Stat(boltLogOf(dir)); !os.IsNotExist(err) {
			t.Errorf("raft.db is still there: %v", err)
		}
		if _, err := os.Stat(walDirOf(dir) + ".new"); !os.IsNotExist(err) {
			t.Errorf("wal.new is still there: %v", err)
		}
		if LogFile(dir) != walMetaOf(dir) {
			t.Errorf("LogFile = %s", LogFile(dir))
		}
		// The moved log takes writes, and they survive a restart.
		waitLeader(t, r)
		mustApply(t, r, cmd(900, &command.CreateSite{ID: "after", AccountID: "acc", Name: "After the move"}))
		after := r.AppliedIndex()
		r.Close()
		r = open(t, "n1", dir)
		defer r.Close()
		if r.AppliedIndex() != after {
			t.Fatalf("reopened at %d, want %d", r.AppliedIndex(), after)
		}
	}

	t.Run("raft.db", func(t *testing.T) {
		dir := boltDataDir(t)
		if LogFile(dir) != boltLogOf(dir) {
			t.Errorf("LogFile before the move = %s", LogFile(dir))
		}
		check(t, dir)
	})
	t.Run("stopped while copying", func(t *testing.T) {
		dir := boltDataDir(t)
		if err := os.MkdirAll(walDirOf(dir)+".new", 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(walDirOf(dir)+".new", "00000000000000000001-0000000000000001.wal"), []byte("half"), 0o600)
		check(t, dir)
	})
	t.Run("stopped before removing raft.db", func(t *testing.T) {
		dir := sampleDataDir(t)
		old := boltDataDir(t)
		b, err := os.ReadFile(boltLogOf(old))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(boltLogOf(dir), b, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, dir)
	})
}

// The WAL damaged while the node was down: every case is an error naming
// the file and saying what to do, never a crash, never an empty log served
// as if it were the node's (HasState must not crash either).
func TestOpenRefusesDamagedWAL(t *testing.T) {
	segment := func(t *testing.T, dir string, i int) string {
		t.Helper()
		segs := segmentFiles(walDirOf(dir))
		if len(segs) <= i {
			t.Fatalf("%d segments, want more than %d", len(segs), i)
		}
		return segs[i]
	}
	cut := func(t *testing.T, path string, frac float64) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		used := walUsed(t, path)
		t.Logf("%s: %d bytes, %d used; cut to %d", filepath.Base(path), fi.Size(), used, int64(float64(used)*frac))
		os.Truncate(path, int64(float64(used)*frac))
	}
	cases := []struct {
		name   string
		small  bool // segments of 16 KiB: several sealed ones
		damage func(t *testing.T, dir string)
		file   func(dir string) string
		what   []string
	}{
		{"tail segment cut short", false, func(t *testing.T, dir string) {
			cut(t, segment(t, dir, 0), 0.5)
		}, walMetaOf, []string{"is damaged", "entries were lost"}},
		{"tail segment zeroed in the middle", false, func(t *testing.T, dir string) {
			s := segment(t, dir, 0)
			used := walUsed(t, s)
			overwrite(t, s, used/2, make([]byte, 4096))
		}, walMetaOf, []string{"is damaged"}},
		{"tail segment missing", false, func(t *testing.T, dir string) {
			os.Remove(segment(t, dir, 0))
		}, walMetaOf, []string{"is damaged", "entries were lost"}},
		{"sealed segment cut short", true, func(t *testing.T, dir string) {
			cut(t, segment(t, dir, 1), 0.5)
		}, walMetaOf, []string{"is damaged"}},
		{"sealed segment zeroed in the middle", true, func(t *testing.T, dir string) {
			s := segment(t, dir, 1)
			overwrite(t, s, walUsed(t, s)/3, make([]byte, 2048))
		}, walMetaOf, []string{"is damaged"}},
		{"sealed segment missing", true, func(t *testing.T, dir string) {
			os.Remove(segment(t, dir, 1))
		}, walMetaOf, []string{"is damaged"}},
		{"metadata empty", false, func(t *testing.T, dir string) {
			os.Truncate(walMetaOf(dir), 0)
		}, walMetaOf, []string{"is empty"}},
		{"metadata missing", false, func(t *testing.T, dir string) {
			os.Remove(walMetaOf(dir))
		}, walMetaOf, []string{"is damaged", "is missing", "segment files"}},
		{"metadata cut short", false, func(t *testing.T, dir string) {
			fi, _ := os.Stat(walMetaOf(dir))
			os.Truncate(walMetaOf(dir), fi.Size()/2)
		}, walMetaOf, []string{"is damaged"}},
		{"metadata without its stable bucket", false, func(t *testing.T, dir string) {
			db, err := bbolt.Open(walMetaOf(dir), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("stable")) })
		}, walMetaOf, []string{"is damaged", `no "stable" bucket`}},
		{"metadata meta pages written over", false, func(t *testing.T, dir string) {
			overwrite(t, walMetaOf(dir), 0, []byte(strings.Repeat("garbage!", 1024)))
		}, walMetaOf, []string{"is damaged"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := sampleDataDir(t)
			if c.small {
				dir = smallSegmentsDataDir(t)
			}
			c.damage(t, dir)
			err := openErr(dir)
			wantAdvice(t, err, c.file(dir), append([]string{"move " + filepath.Join(dir, "raft") + " aside", "--join"}, c.what...)...)
			t.Logf("Open: %v", err)
			has, herr := HasState(dir)
			if herr != nil {
				wantAdvice(t, herr, c.file(dir), "--join")
			}
			t.Logf("HasState: %v %v", has, herr)
		})
	}
}

// walUsed is how far the segment's frames reach: raft-wal preallocates the
// file, so its size says nothing; the rest is zeros.
func walUsed(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return int64(n)
}

// smallSegmentsDataDir is a data dir like the sample whose log spans
// several sealed segments.
func smallSegmentsDataDir(t *testing.T) string {
	t.Helper()
	defer func(n int) { walSegmentSize = n }(walSegmentSize)
	walSegmentSize = 16 << 10
	dir := t.TempDir()
	r := single(t, dir)
	for i := 1; i <= 300; i++ {
		mustApply(t, r, cmd(i, &command.CreateSite{ID: fmt.Sprintf("s%d", i), AccountID: "acc", Name: fmt.Sprintf("Site %d %s", i, strings.Repeat("x", 80))}))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(walDirOf(dir))); n < 3 {
		t.Fatalf("%d segments, want 3 or more", n)
	}
	return dir
}

// BenchmarkOpenLog times openLog's checks (the metadata's pages, then every
// entry read once) on a WAL of LINTEL_DATADIR_BENCH_MB (200) of entries of
// LINTEL_DATADIR_BENCH_ENTRY bytes (8192), written as Raft writes it, in
// batches; and HasState on it. The segments are in the page cache.
//
//	go test -run '^$' -bench OpenLog -benchtime 3x ./consensus/
func BenchmarkOpenLog(b *testing.B) {
	dir := b.TempDir()
	os.MkdirAll(walDirOf(dir), 0o700)
	logger := hclog.NewNullLogger()
	w, err := openWAL(walDirOf(dir), logger)
	if err != nil {
		b.Fatal(err)
	}
	n, entry := writeBenchLog(b, w)
	w.Close()
	b.Logf("%d entries of %d bytes in %d segments", n, entry, len(segmentFiles(walDirOf(dir))))
	var open, has time.Duration
	for b.Loop() {
		t0 := time.Now()
		w, err := openLog(dir, logger)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		w.Close()
		if ok, err := HasState(dir); !ok || err != nil {
			b.Fatal(ok, err)
		}
		open += t1.Sub(t0)
		has += time.Since(t1)
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(open), "openLog-s")
	b.ReportMetric(per(has), "HasState-s")
}

func entries(from, to, term uint64, size int) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, size)})
	}
	return out
}

// A follower drops a deposed leader's entries (a tail truncation) and
// appends the new leader's: the log reopens whole and takes more
// (raft-wal v0.4.0 left the truncated segment without its index).
func TestWALTailTruncationReopens(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(walDirOf(dir), 0o700)
	w, err := openWAL(walDirOf(dir), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs(entries(1, 10, 1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(9, 10); err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs(entries(9, 9, 2, 100)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, err = openLog(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("reopen after a tail truncation: %v", err)
	}
	defer w.Close()
	var l raft.Log
	if err := w.GetLog(9, &l); err != nil || l.Term != 2 {
		t.Fatalf("entry 9: term %d, %v; want the new leader's (term 2)", l.Term, err)
	}
	if err := w.StoreLogs(entries(10, 10, 2, 100)); err != nil {
		t.Fatalf("append after reopening: %v", err)
	}
}

// A stop right after a write that filled a segment, before raft-wal's own
// goroutine started the next one, leaves a tail sealed on disk and open in
// the metadata; raft-wal would refuse every append from then on. openLog
// finds it and rebuilds the log; every trial must take the next entry.
func TestWALSealedTailRebuilt(t *testing.T) {
	defer func(n int) { walSegmentSize = n }(walSegmentSize)
	walSegmentSize = 16 << 10
	logger := hclog.NewNullLogger()
	sealed := 0
	for n := uint64(12); n <= 40; n++ {
		dir, w := filledWAL(t, n)
		// At once, as a crash would: a rotation may be under way.
		// (logStore.Close waits for it; that path is checked below.)
		w.WAL.Close()
		w.meta.Close()
		if s, err := sealedTail(walDirOf(dir)); err != nil {
			t.Fatal(err)
		} else if s {
			sealed++
		}
		w, err := openLog(dir, logger)
		if err != nil {
			t.Fatalf("%d entries: reopen: %v", n, err)
		}
		if last, _ := w.LastIndex(); last != n {
			t.Fatalf("%d entries: reopened with last %d", n, last)
		}
		if err := w.StoreLogs(entries(n+1, n+1, 1, 1000)); err != nil {
			t.Fatalf("%d entries: append after reopening: %v", n, err)
		}
		w.Close()
		if _, err := os.Stat(walDirOf(dir) + ".old"); !os.IsNotExist(err) {
			t.Fatalf("wal.old left: %v", err)
		}
	}
	if sealed == 0 {
		t.Fatal("no trial stopped with a sealed tail: the test did not test the repair")
	}
	t.Logf("%d of 29 trials stopped with the tail sealed", sealed)
	// A clean stop waits for the switch.
	for n := uint64(12); n <= 40; n++ {
		dir, w := filledWAL(t, n)
		w.Close()
		if s, err := sealedTail(walDirOf(dir)); s || err != nil {
			t.Fatalf("%d entries: a clean stop left the tail sealed (%v)", n, err)
		}
	}
}

// filledWAL is a new WAL in a data dir of its own with entries 1..n of 1000
// bytes, each its own append.
func filledWAL(t *testing.T, n uint64) (string, *logStore) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(walDirOf(dir), 0o700)
	w, err := openWAL(walDirOf(dir), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ {
		if err := w.StoreLogs(entries(i, i, 1, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, w
}

// A repair that stopped between its renames (wal moved to wal.old, the new
// one not yet in place) opens the old log, not an empty one.
func TestWALRebuildStoppedBetweenRenames(t *testing.T) {
	ref := open(t, "n1", sampleDataDir(t))
	want := servedBy(t, ref)
	ref.Close()
	dir := sampleDataDir(t)
	if err := os.Rename(walDirOf(dir), walDirOf(dir)+".old"); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(walDirOf(dir)+".new", 0o700)
	if has, err := HasState(dir); !has || err != nil {
		t.Fatalf("HasState = %v, %v: the node would refuse to start or bootstrap anew", has, err)
	}
	r := open(t, "n1", dir)
	defer r.Close()
	if got := servedBy(t, r); got != want {
		t.Fatalf("serves %+v, want %+v", got, want)
	}
}

// The log's files are the node's alone: 0600, in a raft/ of 0700.
func TestWALFilesArePrivate(t *testing.T) {
	dir := smallSegmentsDataDir(t)
	r := open(t, "n1", dir) // reopened: files made at open too
	r.Close()
	for _, d := range []string{filepath.Join(dir, "raft"), walDirOf(dir)} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v", d, fi.Mode().Perm())
		}
	}
	files, err := os.ReadDir(walDirOf(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v, want 0600", f.Name(), fi.Mode().Perm())
		}
	}
	if len(files) < 4 {
		t.Fatalf("%d files in the log, want several segments and the metadata", len(files))
	}
}
