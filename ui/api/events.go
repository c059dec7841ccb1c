package api

import (
	"net/http"
	"strconv"
	"time"

	"lintel/consensus/state"
	"lintel/reader"
)

// listEvents serves this node's access events (SPEC 4.6). Each node answers
// from its own local log: replicating the logs between nodes is not built yet.
// since is an event id (the last one seen) or an RFC 3339 time.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := r.URL.Query()
	f := reader.EventFilter{ReaderID: q.Get("reader"), CardID: q.Get("card"), Result: q.Get("result"), Kind: q.Get("kind")}
	if s := q.Get("since"); s != "" {
		if id, err := strconv.ParseUint(s, 10, 64); err == nil {
			f.SinceID = id
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			f.Since = t
		} else {
			writeError(w, http.StatusBadRequest, "invalid_value", "since", "since is an event id or an RFC 3339 time")
			return
		}
	}
	if f.Result != "" && f.Result != "granted" && f.Result != "denied" {
		writeError(w, http.StatusBadRequest, "invalid_value", "result", "result is granted or denied")
		return
	}
	switch f.Kind {
	case "", reader.KindPresentation, reader.KindRemoteUnlock, reader.KindEnrollment:
	default:
		writeError(w, http.StatusBadRequest, "invalid_value", "kind", "kind is presentation, remote_unlock or enrollment")
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "invalid_value", "limit", "limit is a positive number")
			return
		}
		f.Limit = n
	}
	events, err := a.svc.Events(f)
	if err != nil {
		a.writeServiceError(w, err)
		return
	}
	// An operator sees the events of its own account's readers, on its sites.
	items := []reader.Event{}
	a.svc.Read(func(s *state.State) {
		for _, e := range events {
			if rd, ok := s.Readers.Get(e.ReaderID); ok && rd.AccountID == p.Account.ID && p.CanSite(rd.SiteID) {
				items = append(items, e)
			}
		}
	})
	writeJSON(w, http.StatusOK, listPage[reader.Event]{Items: items})
}
