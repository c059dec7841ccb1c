package clustertests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

const xlsxContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// BenchmarkImport100kThreeNodes measures SPEC section 9, "import of 100 k
// cards from xlsx, 3 nodes: ≤ 30 s". One workbook of 100 000 rows goes to
// a follower, which reads and checks it and forwards the batches to the
// leader; it answers once every batch is committed by a quorum and applied
// on that follower. Also measured: until all three nodes have applied the
// cards, and each node process's peak resident memory (VmHWM).
func BenchmarkImport100kThreeNodes(b *testing.B) {
	const rows = 100_000
	c := startCluster(b, 3)
	leader := c.leader(10 * time.Second)
	api := c.followers(leader)[0]
	s := c.mustCreateSite(api, "Import Bench")
	c.raw(api, 201, "POST", "/api/v1/sites/"+s.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n")
	file := importWorkbook(b, rows)

	tr := newTransport()
	defer tr.CloseIdleConnections()
	long := &http.Client{Transport: tr, Timeout: 10 * time.Minute}
	req, err := http.NewRequest("POST", "http://"+api.http+"/api/v1/sites/"+s.ID+"/cards/import", bytes.NewReader(file))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", xlsxContentType)
	req.Header.Set("Authorization", "Bearer "+c.token)

	b.ResetTimer()
	start := time.Now()
	res, err := long.Do(req)
	if err != nil {
		b.Fatalf("import through %s: %v", api, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	if want := `{"created":` + strconv.Itoa(rows) + `}`; res.StatusCode != 201 || string(bytes.TrimSpace(body)) != want {
		b.Fatalf("import through %s: %d %s", api, res.StatusCode, bytes.TrimSpace(body))
	}
	// Every node's own replica, read locally, until it has them all.
	for _, n := range c.nodes {
		eventually(b, 2*time.Minute, n.id+" applied the import", func() error {
			var v struct {
				Users int `json:"users"`
			}
			if err := c.raw(n, 200, "GET", "/api/v1/sites/"+s.ID, "").decode(&v); err != nil {
				return err
			}
			if v.Users != rows {
				return fmt.Errorf("%s has %d cards of %d", n, v.Users, rows)
			}
			return nil
		})
	}
	everywhere := time.Since(start)
	b.StopTimer()

	rss := map[string]float64{}
	peak := 0.0
	for _, n := range c.nodes {
		kib, err := peakRSS(n.cur().cmd.Process.Pid)
		if err != nil {
			b.Fatalf("%s: %v", n, err)
		}
		rss[n.id] = float64(kib) / 1024
		peak = max(peak, rss[n.id])
	}
	for _, n := range c.nodes {
		var page struct {
			Items      []struct{ ID string }
			NextCursor string `json:"next_cursor"`
		}
		if err := c.raw(n, 200, "GET", "/api/v1/sites/"+s.ID+"/cards?limit=1&consistency=strong", "").decode(&page); err != nil {
			b.Fatal(err)
		}
		if len(page.Items) != 1 || page.NextCursor == "" {
			b.Fatalf("card list on %s: %+v", n, page)
		}
		var check struct {
			OK    bool
			Error string
		}
		if err := c.raw(n, 200, "GET", "/api/v1/self-check?consistency=strong", "").decode(&check); err != nil {
			b.Fatal(err)
		}
		if !check.OK {
			b.Fatalf("self-check on %s: %s", n, check.Error)
		}
	}

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(took.Seconds(), "s/import")
	b.ReportMetric(rows/took.Seconds(), "cards/s")
	b.ReportMetric(everywhere.Seconds(), "s/applied-on-all")
	b.ReportMetric(peak, "peak-rss-MiB")
	lines := [][3]string{
		{"file", fmt.Sprintf("%.1f MiB", float64(len(file))/(1<<20)), ""},
		{"answered 201 by the follower", fmt.Sprintf("%.2f s", took.Seconds()), "≤ 30 s"},
		{"cards/s", fmt.Sprintf("%.0f", rows/took.Seconds()), ""},
		{"applied on all 3 nodes", fmt.Sprintf("%.2f s", everywhere.Seconds()), ""},
	}
	for _, n := range c.nodes {
		role := "follower"
		switch n {
		case leader:
			role = "leader"
		case api:
			role = "took the file"
		}
		b.ReportMetric(rss[n.id], n.id+"-peak-rss-MiB")
		lines = append(lines, [3]string{fmt.Sprintf("peak RSS %s, %s", n.id, role), fmt.Sprintf("%.0f MiB", rss[n.id]), ""})
	}
	table(b, fmt.Sprintf("Import of %d cards from xlsx through a follower, 3 nodes, fsync on", rows), lines)
}

// importWorkbook is a card import of rows cards (the columns of the card
// export), written with excelize's stream writer.
func importWorkbook(b *testing.B, rows int) []byte {
	b.Helper()
	x := excelize.NewFile()
	defer x.Close()
	sw, err := x.NewStreamWriter("Sheet1")
	if err != nil {
		b.Fatal(err)
	}
	header := []any{"First Name", "Last Name", "Email", "Phone Number", "Blue Mobile ID Configuration", "Private ID/CSN"}
	if err := sw.SetRow("A1", header); err != nil {
		b.Fatal(err)
	}
	for i := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		n := strconv.Itoa(i)
		row := []any{"First" + n, "LAST" + n, "holder" + n + "@example.com", "+3361234" + n, "London", strconv.Itoa(2_000_000 + i)}
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

// peakRSS is a process's peak resident set (VmHWM) in KiB.
func peakRSS(pid int) (int64, error) {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("pid %d: odd VmHWM line %q", pid, line)
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("pid %d: no VmHWM in /proc/%d/status", pid, pid)
}
