package consensus

import (
	"bytes"
	"fmt"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func applyLogs(t *testing.T, f *fsm, next *uint64, bodies ...command.Body) {
	t.Helper()
	logs := make([]*raft.Log, len(bodies))
	for i, b := range bodies {
		*next++
		data, err := command.Encode(cmd(int(*next), b))
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = &raft.Log{Index: *next, Term: 1, Type: raft.LogCommand, Data: data}
	}
	for i, r := range f.ApplyBatch(logs) {
		if res := r.(state.Result); res.Err != nil {
			t.Fatalf("%T: %v", bodies[i], res.Err)
		}
	}
}

func fsmBytes(t *testing.T, f *fsm) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.st.Load().Encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Applies go on while a snapshot is persisted, and do not reach it: the
// snapshot holds the state of the moment Snapshot was called, and restores
// to it. Run with -race, this also checks Persist reads nothing applies write.
func TestPersistWhileApplying(t *testing.T) {
	f := newFSM(nil)
	var idx uint64
	applyLogs(t, f, &idx, initCmd().Body,
		&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"},
		&command.CreateReaderConfig{ID: "rc", AccountID: "acc", SiteID: "site", Source: "lintel-reader-config 1\nname = London\n"})
	var batch []command.CreateCard
	for i := range 2000 {
		id := fmt.Sprintf("card-%04d", i)
		batch = append(batch, command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: state.KindPrivateID, ReaderConfig: "London",
			PrivateID: fmt.Sprint(1000 + i), NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Ada", LastName: "L", Email: id + "@example.com"}})
	}
	applyLogs(t, f, &idx, &command.ImportCards{Cards: batch})

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := fsmBytes(t, f)
	var wg sync.WaitGroup
	next := idx
	wg.Go(func() {
		for i := range 300 {
			id := fmt.Sprintf("card-%04d", i)
			applyLogs(t, f, &next,
				&command.UpdateCard{ID: id, AccountID: "acc", Phone: new("+44 20 7946 0000")},
				&command.DeleteCardholder{ID: "h-card-" + fmt.Sprintf("%04d", 1999-i), AccountID: "acc"},
				&command.CreateSite{ID: fmt.Sprint("s", i), AccountID: "acc", Name: fmt.Sprint("Site ", i)})
		}
	})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	wg.Wait()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed %v, cancelled %v", sink.closed, sink.cancelled)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatal("the persisted snapshot is not the state at Snapshot")
	}
	if bytes.Equal(fsmBytes(t, f), want) {
		t.Fatal("the applies changed nothing: the test proves nothing")
	}
	g := newFSM(nil)
	if err := g.Restore(readCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if got := fsmBytes(t, g); !bytes.Equal(got, want) || g.applied.Load() != idx {
		t.Fatalf("restored state differs (applied %d, want %d)", g.applied.Load(), idx)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// A restore that fails leaves the state as it was.
func TestRestoreRefusesUnknownVersion(t *testing.T) {
	f := newFSM(nil)
	var idx uint64
	applyLogs(t, f, &idx, initCmd().Body)
	before := fsmBytes(t, f)
	err := f.Restore(readCloser{bytes.NewReader([]byte("{\"lintel_state\":9}\n{}"))})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("snapshot version 9 is not known")) {
		t.Fatalf("got %v", err)
	}
	if !bytes.Equal(fsmBytes(t, f), before) || f.applied.Load() != idx {
		t.Fatal("a refused restore changed the state")
	}
}

// relaxGC raises the GC percent while restores run, overlapping or not,
// and puts back what was set; a higher setting or GC off stays.
func TestRelaxGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	current := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	a := relaxGC()
	b := relaxGC()
	if p := current(); p != restoreGCPercent {
		t.Fatalf("during restores: %d", p)
	}
	a()
	if p := current(); p != restoreGCPercent {
		t.Fatalf("one restore still running: %d", p)
	}
	b()
	if p := current(); p != 100 {
		t.Fatalf("after: %d", p)
	}
	for _, keep := range []int{-1, 2000} {
		debug.SetGCPercent(keep)
		undo := relaxGC()
		if p := current(); p != keep {
			t.Fatalf("setting %d became %d", keep, p)
		}
		undo()
		if p := current(); p != keep {
			t.Fatalf("setting %d became %d after", keep, p)
		}
	}
}
