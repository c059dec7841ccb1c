package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"lintel/internal/testnode"
)

// BenchmarkImport100k posts a 100 000-row xlsx to one in-process node (SPEC
// section 9: ≤ 30 s on three nodes). Each run imports into a new site. It
// reports the seconds per import and the peak heap in use of the whole
// process (node and client), sampled every 50 ms; then the seconds to make
// the report of those 100 k cards.
func BenchmarkImport100k(b *testing.B) {
	const rows = 100_000
	file := make100k(b, rows)
	n := testnode.Start(b, "bench-import")
	testnode.WaitReady(b, n)
	c := testnode.Login(b, n)
	long := *c.HTTP
	long.Timeout = 10 * time.Minute
	site := func(i int) string {
		var s struct{ ID string }
		ieDecode(b, c.Do(b, "POST", "/api/v1/sites", fmt.Sprintf(`{"name":"Bench %d"}`, i), nil), &s)
		return s.ID
	}
	first := site(0)
	if r := c.Do(b, "POST", "/api/v1/sites/"+first+"/reader-configs", "lintel-reader-config 1\nname = London\n", nil); r.StatusCode != 201 {
		b.Fatalf("reader configuration: %d %s", r.StatusCode, r.Body)
	}
	b.ReportAllocs()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := sampleHeap()
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := first
		if i > 0 {
			b.StopTimer()
			id = site(i)
			b.StartTimer()
		}
		start := time.Now()
		req, _ := http.NewRequest("POST", c.Base+"/api/v1/sites/"+id+"/cards/import", bytes.NewReader(file))
		req.Header.Set("Content-Type", xlsxType)
		resp, err := long.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		total += time.Since(start)
		if resp.StatusCode != 201 || string(bytes.TrimSpace(body)) != `{"created":`+strconv.Itoa(rows)+`}` {
			b.Fatalf("import: %d %s", resp.StatusCode, body)
		}
	}
	b.StopTimer()
	heap := peak()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The report of the first site, now 100 k cards: the other way round.
	start := time.Now()
	resp, err := long.Get(c.Base + "/api/v1/sites/" + first + "/cards/report.xlsx")
	if err != nil {
		b.Fatal(err)
	}
	report, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(report) < rows*10 {
		b.Fatalf("report: %d, %d bytes", resp.StatusCode, len(report))
	}
	b.ReportMetric(time.Since(start).Seconds(), "report-s")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/import")
	b.ReportMetric(float64(rows)*float64(b.N)/total.Seconds(), "cards/s")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MiB/import")
	b.ReportMetric(float64(len(file))/(1<<20), "file-MiB")
}

// sampleHeap samples HeapInuse until the returned function is called, which
// gives the peak.
func sampleHeap() func() uint64 {
	var (
		mu   sync.Mutex
		peak uint64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	read := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		peak = max(peak, m.HeapInuse)
		mu.Unlock()
	}
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		read()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// make100k writes a card import of rows cards with the stream writer.
func make100k(b *testing.B, rows int) []byte {
	b.Helper()
	x := excelize.NewFile()
	defer x.Close()
	sw, err := x.NewStreamWriter("Sheet1")
	if err != nil {
		b.Fatal(err)
	}
	if err := sw.SetRow("A1", importHeader); err != nil {
		b.Fatal(err)
	}
	for i := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		row := []any{"First" + strconv.Itoa(i), "LAST" + strconv.Itoa(i), "user" + strconv.Itoa(i) + "@example.com",
			"+3361234" + strconv.Itoa(i), "London", strconv.Itoa(1_000_000 + i)}
		if err := sw.SetRow(cell, row); err != nil {
			b.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := x.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkImportBomb posts what a person on the network could send to take
// a node's memory: a 500 MiB cell packed into about 500 KiB (a deflate
// bomb), and a 1 MiB cell that packs like any sheet. It reports the upload's
// size, the milliseconds to refuse each and the peak heap in use of the
// process (node and client) over the run.
func BenchmarkImportBomb(b *testing.B) {
	bomb := bigCell(b, 500<<20, false)
	cell := bigCell(b, 1<<20, true)
	n := testnode.Start(b, "bench-bomb")
	testnode.WaitReady(b, n)
	c := testnode.Login(b, n)
	var s struct{ ID string }
	ieDecode(b, c.Do(b, "POST", "/api/v1/sites", `{"name":"Bombs"}`, nil), &s)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := sampleHeap()
	var bombT, cellT time.Duration
	b.ResetTimer()
	for range b.N {
		for _, up := range []struct {
			file []byte
			took *time.Duration
		}{{bomb, &bombT}, {cell, &cellT}} {
			start := time.Now()
			r := c.Do(b, "POST", "/api/v1/sites/"+s.ID+"/cards/import", string(up.file), map[string]string{"Content-Type": xlsxType})
			*up.took += time.Since(start)
			if r.StatusCode != http.StatusRequestEntityTooLarge {
				b.Fatalf("upload of %d bytes: %d %s", len(up.file), r.StatusCode, r.Body)
			}
		}
	}
	b.StopTimer()
	top := peak()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(bomb))/1024, "bomb_KiB")
	b.ReportMetric(float64(bombT.Milliseconds())/float64(b.N), "bomb_ms")
	b.ReportMetric(float64(cellT.Milliseconds())/float64(b.N), "cell_ms")
	b.ReportMetric(float64(top-min(top, base.HeapInuse))/(1<<20), "peak_heap_growth_MiB")
}
