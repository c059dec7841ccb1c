package consensus

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// growthWrites is the number of writes of BenchmarkSnapshotAfterWrites;
// LINTEL_GROWTH_WRITES overrides it for a quicker run.
func growthWrites(b *testing.B) int { return benchSize(b, "LINTEL_GROWTH_WRITES", 1_000_000, 10000) }

// BenchmarkSnapshotAfterWrites measures how the replicated state grows with
// writes that add no record: on a registry of 1000 cards, 1 M card updates
// (a new phone number each), one in ten with an Idempotency-Key, applied
// through the FSM as encoded logs. It reports the snapshot size after a
// tenth of the writes and after all of them (the target: no larger than the
// live records plus a bounded tail), the dedup entries and history lines
// the state holds then, and the time to restore the last snapshot.
func BenchmarkSnapshotAfterWrites(b *testing.B) {
	total := growthWrites(b)
	var sizeTenth, sizeAll int64
	var dedup, history int
	var restore time.Duration
	for range b.N {
		f := newFSM(nil)
		var idx uint64
		at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
		apply := func(body command.Body, idempotent bool) {
			idx++
			at = at.Add(time.Millisecond)
			c := command.Command{Header: command.Header{RequestID: "w" + strconv.FormatUint(idx, 10), Idempotent: idempotent, Actor: "op", At: at, Node: "n1"}, Body: body}
			data, err := command.Encode(c)
			if err != nil {
				b.Fatal(err)
			}
			if res := f.ApplyBatch([]*raft.Log{{Index: idx, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: at}})[0].(state.Result); res.Err != nil {
				b.Fatalf("%T: %v", body, res.Err)
			}
		}
		apply(initCmd().Body, false)
		apply(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"}, false)
		apply(&command.CreateReaderConfig{ID: "rc", AccountID: "acc", SiteID: "site", Source: "lintel-reader-config 1\nname = London\n"}, false)
		const cards = 1000
		batch := make([]command.CreateCard, cards)
		for i := range batch {
			id := fmt.Sprintf("card-%04d", i)
			batch[i] = command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: state.KindPrivateID, ReaderConfig: "London",
				PrivateID: strconv.Itoa(1000 + i), NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Ada", LastName: "Holder", Email: id + "@example.com"}}
		}
		apply(&command.ImportCards{Cards: batch}, false)
		size := func() int64 {
			var buf countWriter
			if err := f.st.Load().Encode(&buf); err != nil {
				b.Fatal(err)
			}
			return buf.n
		}
		for i := range total {
			phone := "+44 20 7946 " + strconv.Itoa(1000+i%9000)
			apply(&command.UpdateCard{ID: fmt.Sprintf("card-%04d", i%cards), AccountID: "acc", Phone: &phone}, i%10 == 0)
			if i+1 == total/10 {
				sizeTenth = size()
			}
		}
		sizeAll = size()
		st := f.st.Load()
		dedup, history = st.Dedup.Len(), st.History.Len()
		var buf bytes.Buffer
		if err := st.Encode(&buf); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		g := newFSM(nil)
		if err := g.Restore(io.NopCloser(&buf)); err != nil {
			b.Fatal(err)
		}
		restore = time.Since(t0)
	}
	// Before: the same benchmark on the build that kept every history line
	// and whole answers (2026-12-02, consensus/DESIGN.md).
	b.Logf("After %d writes on 1000 cards: snapshot %.1f MB (%.1f MB after a tenth), %d history lines, %d dedup entries, restore %.2f s\n"+
		"  before, 1 M writes: 137.3 MB (39.3 MB after a tenth), 1 000 003 history lines, 150 001 dedup entries, restore 1.19 s",
		total, float64(sizeAll)/1e6, float64(sizeTenth)/1e6, history, dedup, restore.Seconds())
	b.ReportMetric(float64(sizeTenth)/1e6, "MB-after-tenth")
	b.ReportMetric(float64(sizeAll)/1e6, "MB-after-all")
	b.ReportMetric(float64(total), "writes")
	b.ReportMetric(float64(dedup), "dedup-entries")
	b.ReportMetric(float64(history), "history-lines")
	b.ReportMetric(restore.Seconds(), "restore-s")
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
