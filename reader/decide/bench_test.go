package decide

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader/exchange"
)

const (
	benchCards     = 1_000_000 // in the registry (imported: status created)
	benchActivated = 10_000    // of which activated, and presented
)

type benchFixture struct {
	s            *state.State
	chs          []exchange.Challenge
	prs          []exchange.Presentation
	bytesPerCard float64
	build        time.Duration
}

var (
	benchOnce sync.Once
	bench     *benchFixture
)

// benchState builds, once per process, a registry of benchCards cards
// through ImportCards batches, and activates benchActivated of them through
// SendCard and ActivateCard (activating all 1 M through commands would put
// 1 M activation messages in the outbox and take minutes).
func benchState(b *testing.B) *benchFixture {
	benchOnce.Do(func() {
		start := time.Now()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := newRegistry(b, 1000)
		zero := int64(0)
		f := &fixture{registry: r, phones: map[string]phone{}}
		f.must(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"})
		f.must(&command.UpdateSite{ID: "site", AccountID: "acc", CardCost: &zero})
		f.must(&command.CreateReaderConfig{ID: "rc", AccountID: "acc", SiteID: "site", Source: "lintel-reader-config 1\nname = London\n"})
		f.must(&command.CreateReader{ID: "r1", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Door", ReaderConfig: "London"})
		batch := make([]command.CreateCard, 0, state.MaxImportBatch)
		for i := 0; i < benchCards; i++ {
			id := fmt.Sprintf("card-%07d", i)
			batch = append(batch, command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: state.KindPrivateID,
				ReaderConfig: "London", PrivateID: fmt.Sprint(10_000_000 + i),
				NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Ada", LastName: fmt.Sprint("Holder ", i), Email: id + "@example.com"}})
			if len(batch) == cap(batch) {
				f.must(&command.ImportCards{Cards: batch})
				batch = batch[:0]
			}
		}
		bf := &benchFixture{s: f.s}
		for i := 0; i < benchActivated; i++ {
			id := fmt.Sprintf("card-%07d", i*(benchCards/benchActivated))
			p := newPhone(b)
			f.activate(id, p)
			ch, pr := present(b, "r1", "site", id, p)
			bf.chs, bf.prs = append(bf.chs, ch), append(bf.prs, pr)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		bf.bytesPerCard = float64(after.HeapAlloc-before.HeapAlloc) / benchCards
		bf.build = time.Since(start)
		bench = bf
	})
	if bench == nil {
		b.Fatal("building the 1 M card registry failed")
	}
	return bench
}

// BenchmarkDecide1M times each decision on one goroutine (verify + rules)
// with 1 M cards in the registry, and reports p50, p99, decisions/s and the
// heap held per card.
func BenchmarkDecide1M(b *testing.B) {
	f := benchState(b)
	keys := NewKeyCache(0)
	now := time.Date(2025, 6, 4, 12, 0, 0, 0, time.UTC)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(f.prs)
		t0 := time.Now()
		d := Decide(f.s, "r1", f.chs[k], f.prs[k], now, keys)
		lat = append(lat, time.Since(t0))
		if !d.Granted {
			b.Fatalf("denied: %+v", d)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	var total time.Duration
	for _, l := range lat {
		total += l
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
	b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
	b.ReportMetric(float64(len(lat))/total.Seconds(), "decisions/s")
	b.ReportMetric(f.bytesPerCard, "bytes/card")
	b.ReportMetric(f.build.Seconds(), "build-s")
}

// BenchmarkDecideParallel decides from every P at once (under one shared
// read of the state, as under the node's read lock).
func BenchmarkDecideParallel(b *testing.B) {
	f := benchState(b)
	keys := NewKeyCache(0)
	now := time.Date(2025, 6, 4, 12, 0, 0, 0, time.UTC)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := int(next.Add(1)) % len(f.prs)
			if d := Decide(f.s, "r1", f.chs[k], f.prs[k], now, keys); !d.Granted {
				b.Errorf("denied: %+v", d)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkVerifyP256 is the ECDSA P-256 verification alone, the floor
// under every decision.
func BenchmarkVerifyP256(b *testing.B) {
	p := newPhone(b)
	ch, pr := present(b, "r1", "site", "c1", p)
	c := state.Card{ID: "c1", Device: &state.Device{PublicKey: p.public()}}
	keys := NewKeyCache(0)
	for b.Loop() {
		if !verify(c, "r1", ch, pr, keys) {
			b.Fatal("bad signature")
		}
	}
}
