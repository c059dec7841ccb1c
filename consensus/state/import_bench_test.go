package state

import (
	"fmt"
	"strconv"
	"testing"

	"lintel/consensus/command"
)

// BenchmarkImportBatch applies one ImportCards of 1000 rows (the API's
// batch) and of MaxImportBatch rows to a registry of 100 000 cards: the
// time the FSM spends on it, during which other writes wait for their turn.
func BenchmarkImportBatch(b *testing.B) {
	for _, rows := range []int{1000, MaxImportBatch} {
		b.Run(fmt.Sprint("rows=", rows), func(b *testing.B) { benchImportBatch(b, rows) })
	}
}

func benchImportBatch(b *testing.B, size int) {
	h := newHarness(&testing.T{})
	h.mustApply(&command.CreateSite{ID: "site", AccountID: "acc", Name: "London"})
	h.mustApply(&command.CreateReaderConfig{ID: "rc", AccountID: "acc", SiteID: "site", Source: "lintel-reader-config 1\nname = London\n"})
	n := 0
	batch := func(size int) *command.ImportCards {
		rows := make([]command.CreateCard, size)
		for i := range rows {
			n++
			id := fmt.Sprintf("card-%07d", n)
			rows[i] = command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London",
				PrivateID: strconv.Itoa(1_000_000 + n), NewCardholder: &command.CreateCardholder{ID: "h-" + id, FirstName: "Ada", LastName: "Holder " + strconv.Itoa(n), Email: id + "@example.com"}}
		}
		return &command.ImportCards{Cards: rows}
	}
	for range 20 {
		h.mustApply(batch(MaxImportBatch))
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		next := batch(size)
		b.StartTimer()
		if res := h.apply(next); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}
