package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"lintel/ui/api"
)

// HistoryRow is one line of the account history (seed 003, figure 8).
type HistoryRow struct {
	At                     time.Time
	Area, Action, By, Node string
}

// HistoryPage is the account history with its date range and search.
type HistoryPage struct {
	From, To, Q string
	Rows        []HistoryRow
	Next        string // the cursor of the next page, if any
	Cursor      string
	Error       string
}

// query is the page's filter as URL parameters (cursor excluded).
func (h HistoryPage) query() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"from": h.From, "to": h.To, "q": h.Q} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// nextURL is the next page's link.
func (h HistoryPage) nextURL() string {
	v := h.query()
	v.Set("cursor", h.Next)
	return "/history?" + v.Encode()
}

// exportURL is the API's spreadsheet of the same lines.
func (h HistoryPage) exportURL() string {
	u := "/api/v1/history/export.xlsx"
	if v := h.query(); len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

// history serves GET /history?from=&to=&q=&cursor=: the API's list, 100
// lines a page in commit order.
func (c *Console) history(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.Allows("account", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing the account history; ask an administrator.")
		return
	}
	in := r.URL.Query()
	h := HistoryPage{From: strings.TrimSpace(in.Get("from")), To: strings.TrimSpace(in.Get("to")), Q: strings.TrimSpace(in.Get("q")), Cursor: in.Get("cursor")}
	v := h.query()
	v.Set("limit", "100")
	if h.Cursor != "" {
		v.Set("cursor", h.Cursor)
	}
	status := http.StatusOK
	code, out, ref := c.callAPI(r, http.MethodGet, "/api/v1/history?"+v.Encode(), nil, "")
	if ref != nil {
		status, h.Error = code, ref.message
	} else {
		var page struct {
			Items []struct {
				At                 time.Time
				Area, Action, Node string
				PerformedBy        string `json:"performed_by"`
			}
			NextCursor string `json:"next_cursor"`
		}
		json.Unmarshal(out, &page)
		for _, x := range page.Items {
			h.Rows = append(h.Rows, HistoryRow{At: x.At.In(c.loc), Area: x.Area, Action: x.Action, By: x.PerformedBy, Node: x.Node})
		}
		h.Next = page.NextCursor
	}
	render(w, r, status, HistoryView(c.chrome(r, p, "history"), h))
}
