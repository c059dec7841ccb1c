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

// benchNow is a Wednesday, 13:00 in London: the office schedule is open.
var benchNow = time.Date(2025, 6, 4, 12, 0, 0, 0, time.UTC)

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
// 1 M activation messages in the outbox and take minutes). Every card has
// the office access level, scheduled in the site's time zone (London), so a
// decision runs every rule: status, signature, site, reader configuration,
// uses, access level and schedule.
func benchState(b *testing.B) *benchFixture {
	benchOnce.Do(func() {
		start := time.Now()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := newRegistry(b, 1000)
		zero := int64(0)
		tz := "Europe/London"
		f := &fixture{registry: r, phones: map[string]phone{}}
		f.must(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"})
		f.must(&command.UpdateSite{ID: "site", AccountID: "acc", CardCost: &zero, TimeZone: &tz})
		f.must(&command.CreateReaderConfig{ID: "rc", AccountID: "acc", SiteID: "site", Source: "lintel-reader-config 1\nname = London\n"})
		f.must(&command.CreateReader{ID: "r1", AccountID: "acc", SiteID: "site", NodeID: "n1", Name: "Door", ReaderConfig: "London"})
		f.must(&command.CreateSchedule{ID: "sched", AccountID: "acc", SiteID: "site", Name: "Office",
			Windows: []command.Window{{Days: []int{1, 2, 3, 4, 5}, From: "09:00", To: "17:00"}}})
		f.must(&command.CreateAccessLevel{ID: "al-office", AccountID: "acc", SiteID: "site", Name: "Office", ReaderIDs: []string{"r1"}, ScheduleID: "sched"})
		levels := []string{"al-office"}
		batch := make([]command.CreateCard, 0, state.MaxImportBatch)
		for i := 0; i < benchCards; i++ {
			id := fmt.Sprintf("card-%07d", i)
			batch = append(batch, command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: state.KindPrivateID,
				ReaderConfig: "London", PrivateID: fmt.Sprint(10_000_000 + i), AccessLevels: levels,
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

// warmKeys is a key cache holding the device key of every presented card,
// as a reader's cache does once each card has been presented there.
func (f *benchFixture) warmKeys(b *testing.B) *KeyCache {
	keys := NewKeyCache(0)
	for k := range f.prs {
		if d := Decide(f.s, "r1", f.chs[k], f.prs[k], benchNow, keys); !d.Granted {
			b.Fatalf("denied: %+v", d)
		}
	}
	return keys
}

// reportLatency reports p50 and p99 of lat in µs.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
	b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
}

// BenchmarkDecide1M times each decision (verify + rules) on one goroutine
// with GOMAXPROCS 1 (one core, whatever -cpu says), with 1 M cards in the
// registry, and reports p50, p99, decisions/s (wall clock), decisions per
// CPU-second of the whole process, and the heap held per card.
// cached: the reader's key cache holds every presented card's key (steady
// state); uncached: the device key is parsed at every decision (a cache miss
// each time).
func BenchmarkDecide1M(b *testing.B) {
	f := benchState(b)
	for _, bc := range []struct {
		name string
		keys func() *KeyCache
	}{
		{"cached", func() *KeyCache { return f.warmKeys(b) }},
		{"uncached", func() *KeyCache { return nil }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			keys := bc.keys()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			for i := 0; i < b.N; i++ {
				k := i % len(f.prs)
				t0 := time.Now()
				d := Decide(f.s, "r1", f.chs[k], f.prs[k], benchNow, keys)
				lat = append(lat, time.Since(t0))
				if !d.Granted {
					b.Fatalf("denied: %+v", d)
				}
			}
			cpu1, _ := processCPU()
			b.StopTimer()
			var total time.Duration
			for _, l := range lat {
				total += l
			}
			reportLatency(b, lat)
			b.ReportMetric(float64(len(lat))/total.Seconds(), "decisions/s")
			if cpuOK && cpu1 > cpu0 {
				// Decisions per second of CPU the process got: on a shared
				// machine, what one core would do if it were this one's alone.
				b.ReportMetric(float64(b.N)/(cpu1-cpu0).Seconds(), "decisions/cpu-s")
			}
			b.ReportMetric(f.bytesPerCard, "bytes/card")
			b.ReportMetric(f.build.Seconds(), "build-s")
		})
	}
}

// BenchmarkDecideParallel decides from every P at once (under one shared
// read of the state, as under the node's read lock), with a warm key cache,
// and reports decisions/s over all Ps (wall clock), decisions per CPU-second
// (per core busy) and the latency of each decision.
func BenchmarkDecideParallel(b *testing.B) {
	f := benchState(b)
	keys := f.warmKeys(b)
	var (
		next atomic.Int64
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
	)
	b.ResetTimer()
	cpu0, cpuOK := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, b.N)
		for pb.Next() {
			k := int(next.Add(1)) % len(f.prs)
			t0 := time.Now()
			d := Decide(f.s, "r1", f.chs[k], f.prs[k], benchNow, keys)
			mine = append(mine, time.Since(t0))
			if !d.Granted {
				b.Errorf("denied: %+v", d)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	cpu1, _ := processCPU()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	if cpuOK && cpu1 > cpu0 {
		b.ReportMetric(float64(b.N)/(cpu1-cpu0).Seconds(), "decisions/cpu-s")
	}
	if len(lat) > 0 {
		reportLatency(b, lat)
	}
}

// BenchmarkVerifyP256 is the ECDSA P-256 verification alone (a cached key),
// the floor under every decision.
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

// BenchmarkDecideSmall is a granted decision through every rule (a
// scheduled access level, London time) in a registry of a few cards: with
// BenchmarkVerifyP256 it gives the cost of the rules alone, and it is small
// enough to run under valgrind --tool=callgrind for instruction counts.
func BenchmarkDecideSmall(b *testing.B) {
	f := newFixture(b)
	keys := NewKeyCache(0)
	ch, pr := present(b, "r1", "site", "office", f.phones["office"])
	for b.Loop() {
		if d := Decide(f.s, "r1", ch, pr, openAt, keys); !d.Granted {
			b.Fatalf("denied: %+v", d)
		}
	}
}
