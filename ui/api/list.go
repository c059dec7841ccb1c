package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// listQuery is the common ?q=&status=&limit=&cursor= of every list.
type listQuery struct {
	Q      string
	Status string
	Limit  int
	After  string // the sort key of the last item already seen
}

type listPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func parseList(w http.ResponseWriter, r *http.Request) (listQuery, bool) {
	v := r.URL.Query()
	q := listQuery{Q: strings.ToLower(strings.TrimSpace(v.Get("q"))), Status: v.Get("status"), Limit: 100}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid_value", "limit", "limit must be a whole number from 1 to 1000")
			return q, false
		}
		q.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_value", "cursor", "cursor is not one this API gave out; start again without it")
			return q, false
		}
		q.After = string(b)
	}
	return q, true
}

// page cuts a list sorted by key after the cursor.
func page[T any](items []T, key func(T) string, q listQuery) listPage[T] {
	out := listPage[T]{Items: []T{}}
	for _, it := range items {
		if q.After != "" && key(it) <= q.After {
			continue
		}
		if len(out.Items) == q.Limit {
			out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(out.Items[len(out.Items)-1])))
			break
		}
		out.Items = append(out.Items, it)
	}
	return out
}

// matches reports whether any of the text columns contains q (already lower-case).
func matches(q string, cols ...string) bool {
	if q == "" {
		return true
	}
	for _, c := range cols {
		if strings.Contains(strings.ToLower(c), q) {
			return true
		}
	}
	return false
}
