package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The account history page lists the account's changes with the API's
// filters: a date range and a search.
func TestHistoryPage(t *testing.T) {
	base := startNode(t)
	b := newBrowser(t, base)
	b.login()
	expectRedirect(t, b.post("/sites", url.Values{"name": {"Lyon"}}), "/sites")
	p := b.get("/history")
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="history-table"`) || !strings.Contains(p.body, "New site created : Lyon") {
		t.Fatalf("history: %d\n%s", p.status, p.body)
	}
	today := time.Now().UTC().Format("2006-01-02")
	tomorrow := time.Now().UTC().Add(48 * time.Hour).Format("2006-01-02")
	if p := b.get("/history?from=" + today + "&q=lyon"); !strings.Contains(p.body, "Customer Sites") {
		t.Errorf("today's site lines are not listed:\n%s", p.body)
	}
	if p := b.get("/history?from=" + tomorrow); !strings.Contains(p.body, "No line matches") {
		t.Errorf("lines from the future:\n%s", p.body)
	}
	if p := b.get("/history?from=31-12-2018"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "must be a date") {
		t.Errorf("a bad date: %d", p.status)
	}
}
