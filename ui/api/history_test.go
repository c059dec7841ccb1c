package api_test

import (
	"fmt"
	"net/url"
	"testing"

	"lintel/consensus/state"
	"lintel/internal/testnode"
)

// historyCount pages through GET /api/v1/history and counts the lines that
// match q.
func historyCount(t *testing.T, c *testnode.Client, q string) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		var page struct {
			Items      []struct{ Action string }
			NextCursor string `json:"next_cursor"`
		}
		decodeInto(t, c.Do(t, "GET", "/api/v1/history?limit=1000&q="+url.QueryEscape(q)+"&cursor="+cursor, "", nil), &page)
		n += len(page.Items)
		if page.NextCursor == "" {
			return n
		}
		cursor = page.NextCursor
	}
}

// An account's history past the state's retention is still listed,
// searched and exported: the lines that left the replicated state are in
// the node's archive, and stay there across a restart.
func TestHistoryPastTheRetention(t *testing.T) {
	dir := t.TempDir()
	n := testnode.StartIn(t, dir, "n1")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	site := created(t, c, "/api/v1/sites", `{"name":"Archive"}`)
	updates := state.HistoryKeep + state.HistoryTrim + 50
	for i := range updates {
		expect(t, c.Do(t, "PATCH", "/api/v1/sites/"+site, fmt.Sprintf(`{"card_cost":%d}`, i%7), nil), 200, "")
	}
	if got := historyCount(t, c, "site updated"); got != updates {
		t.Fatalf("%d site updates listed, want %d (the state keeps at most %d lines)", got, updates, state.HistoryKeep+state.HistoryTrim)
	}
	rows := grid(t, download(t, c, "/api/v1/history/export.xlsx?q=site+updated"))
	if len(rows) < updates {
		t.Fatalf("the export has %d rows, want at least %d", len(rows), updates)
	}
	n.Stop()
	n = testnode.StartIn(t, dir, "n1")
	testnode.WaitReady(t, n)
	c = testnode.Login(t, n)
	if got := historyCount(t, c, "site updated"); got != updates {
		t.Fatalf("after a restart: %d site updates listed, want %d", got, updates)
	}
}
