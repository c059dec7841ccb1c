package consensus

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/xuri/excelize/v2"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// stallRows is the size of the import check and of the export in
// BenchmarkApplyStall (the 100 k rows).
const stallRows = 100_000

// applier applies one small command every 2 ms (500 writes a second, each a
// new cardholder) through fsm.ApplyBatch, as Raft's FSM goroutine does,
// and records how long each call took: the time an apply waited for
// anything else plus its own work.
type applier struct {
	f    *fsm
	idx  uint64
	mu   sync.Mutex
	took []time.Duration
	stop chan struct{}
	done chan struct{}
}

func startApplier(b *testing.B, f *fsm) *applier {
	a := &applier{f: f, idx: f.applied.Load(), stop: make(chan struct{}), done: make(chan struct{})}
	at := f.st.Load().Clock
	go func() {
		defer close(a.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-tick.C:
			}
			a.idx++
			at = at.Add(time.Millisecond)
			id := "stall-" + strconv.FormatUint(a.idx, 10)
			data, err := command.Encode(command.Command{Header: command.Header{RequestID: id, Actor: "op", At: at, Node: "n1"},
				Body: &command.CreateCardholder{ID: id, AccountID: "acc", FirstName: "Stall", LastName: id, Email: id + "@example.com"}})
			if err != nil {
				panic(err)
			}
			t0 := time.Now()
			res := f.ApplyBatch([]*raft.Log{{Index: a.idx, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: at}})[0]
			d := time.Since(t0)
			if r, ok := res.(state.Result); !ok || r.Err != nil {
				panic(fmt.Sprintf("stall apply: %v", res))
			}
			a.mu.Lock()
			a.took = append(a.took, d)
			a.mu.Unlock()
		}
	}()
	return a
}

// phase returns the longest apply and the 99th percentile since the last
// call, and how many applies that was. It waits for an apply to finish
// first: one held up for the whole phase ends only after it.
func (a *applier) phase() (longest, p99 time.Duration, n int) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		a.mu.Lock()
		n := len(a.took)
		a.mu.Unlock()
		if n > 0 {
			break
		}
	}
	a.mu.Lock()
	t := a.took
	a.took = nil
	a.mu.Unlock()
	if len(t) == 0 {
		return 0, 0, 0
	}
	slices.Sort(t)
	return t[len(t)-1], t[len(t)*99/100], len(t)
}

func (a *applier) close() {
	close(a.stop)
	<-a.done
}

// BenchmarkApplyStall measures, on the 1 M-card registry of
// BenchmarkSnapshot1M, how long applies wait while the three big readers
// run beside them (target: no apply over 50 ms):
//   - snapshot: fsm.Snapshot and Persist into a FileSnapshotStore, as Raft
//     runs them;
//   - check: State.CheckImport of 100 k new rows on the current version, as
//     the import does before it writes;
//   - export: 100 k cards of the site read in list order (State.SiteCards)
//     and written as an xlsx stream, as the card export does.
//
// An applier makes 500 writes a second throughout. It reports the longest
// apply and the p99 in each phase, and with nothing else running (idle).
func BenchmarkApplyStall(b *testing.B) {
	fx := snapState(b)
	dir := b.TempDir()
	store, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]command.CreateCard, stallRows)
	for i := range rows {
		id := fmt.Sprintf("check-%07d", i)
		rows[i] = command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: state.KindPrivateID, ReaderConfig: "London",
			PrivateID:     strconv.Itoa(50_000_000 + i),
			NewCardholder: &command.CreateCardholder{ID: "h" + id, AccountID: "acc", FirstName: "Check", LastName: id, Email: id + "@example.com"}}
	}
	ap := startApplier(b, fx.fsm)
	defer ap.close()
	worst := map[string]time.Duration{}
	p99s := map[string]time.Duration{}
	measure := func(name string, run func()) {
		ap.phase()
		run()
		longest, p99, n := ap.phase()
		if n == 0 {
			b.Fatalf("%s: no apply ran", name)
		}
		worst[name], p99s[name] = max(worst[name], longest), max(p99s[name], p99)
	}
	b.ResetTimer()
	for range b.N {
		measure("idle", func() { time.Sleep(2 * time.Second) })
		measure("snapshot", func() {
			snap, err := fx.fsm.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			persist(b, fx.fsm, store, snap)
		})
		measure("check", func() {
			st := fx.fsm.st.Load()
			if errs := st.CheckImport(command.Header{RequestID: "check", Actor: "op", At: st.Clock}, rows); len(errs) != 0 {
				b.Fatalf("the import check refused %d rows: %v", len(errs), errs[0].Rejection)
			}
		})
		measure("export", func() {
			x := excelize.NewFile()
			sw, err := x.NewStreamWriter("Sheet1")
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for c := range fx.fsm.st.Load().SiteCards("site", false, "", "") {
				n++
				cell, _ := excelize.CoordinatesToCellName(1, n)
				if err := sw.SetRow(cell, []any{c.LastName, c.FirstName, c.Email, c.Phone, c.ReaderConfig, c.PrivateID, c.Status, c.CreatedAt}); err != nil {
					b.Fatal(err)
				}
				if n == min(stallRows, fx.cards) {
					break
				}
			}
			if err := sw.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := x.Write(io.Discard); err != nil {
				b.Fatal(err)
			}
			if n != min(stallRows, fx.cards) {
				b.Fatalf("exported %d cards, want %d", n, min(stallRows, fx.cards))
			}
		})
	}
	b.StopTimer()
	// Before: the same benchmark on the build with maps under one lock
	// (2026-12-02, consensus/DESIGN.md).
	before := map[string]string{"idle": "0.28 ms", "snapshot": "608 ms", "check": "6 004 ms", "export": "7 636 ms"}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Longest apply at 500 writes/s beside each job, %d cards (target ≤ 50 ms)\n", fx.cards)
	for _, name := range []string{"idle", "snapshot", "check", "export"} {
		b.ReportMetric(float64(worst[name].Microseconds())/1000, name+"-max-ms")
		b.ReportMetric(float64(p99s[name].Microseconds())/1000, name+"-p99-ms")
		fmt.Fprintf(&sb, "  %-9s %9.2f ms (p99 %.2f ms)   before (maps, 1 M cards): %s\n", name,
			float64(worst[name].Microseconds())/1000, float64(p99s[name].Microseconds())/1000, before[name])
	}
	b.Log(sb.String())
}
