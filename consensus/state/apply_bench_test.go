package state

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"lintel/consensus/command"
)

// BenchmarkApplyCardholderWrite is one node's share of the CPU of a
// cardholder write under load, as the FSM does it: decode the entry and
// apply it to the batch's version of the state (a new version every 16
// entries), with 100 000 cardholders in the account and the dedup table
// full. Each iteration applies 20 000 writes; it reports the time, bytes
// and objects allocated per write.
func BenchmarkApplyCardholderWrite(b *testing.B) {
	const perIter = 20_000
	h := newHarness(&testing.T{})
	at := h.at.Add(1)
	enc := func(i int) []byte {
		c := made(fmt.Sprintf("r%09d", i), "n1", at, &command.CreateCardholder{ID: fmt.Sprintf("h%09d", i), AccountID: "acc",
			FirstName: "Spread12", LastName: fmt.Sprintf("Holder%06d", i), Email: fmt.Sprintf("h12-%d@example.com", i)})
		out, err := command.Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	s := h.s
	for i := range 100_000 {
		c, _ := command.Decode(enc(i))
		h.idx++
		s.ApplyAt(h.idx, at, c)
	}
	next := 100_000
	var spent time.Duration
	var allocs, bytes uint64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		wire := make([][]byte, perIter)
		for i := range wire {
			wire[i] = enc(next)
			next++
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		b.StartTimer()
		t0 := time.Now()
		for i, w := range wire {
			if i%16 == 0 {
				s = s.Clone()
			}
			c, err := command.Decode(w)
			if err != nil {
				b.Fatal(err)
			}
			h.idx++
			if res, _ := s.ApplyAt(h.idx, at, c); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
		spent += time.Since(t0)
		b.StopTimer()
		runtime.ReadMemStats(&m1)
		allocs += m1.Mallocs - m0.Mallocs
		bytes += m1.TotalAlloc - m0.TotalAlloc
		b.StartTimer()
	}
	n := float64(b.N * perIter)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(spent.Microseconds())/n, "µs/write")
	b.ReportMetric(float64(bytes)/n, "B/write")
	b.ReportMetric(float64(allocs)/n, "allocs/write")
}
