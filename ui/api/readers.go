package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader"
)

// Readers, schedules and access levels (SPEC 4.6). The reader controller
// that runs them on their nodes comes with the reader work.

func (a *API) listReaders(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	site := r.URL.Query().Get("site_id")
	var items []state.Reader
	a.svc.Read(func(s *state.State) {
		for _, rd := range s.Readers.All() {
			if rd.AccountID == p.Account.ID && p.CanSite(rd.SiteID) && (site == "" || rd.SiteID == site) {
				items = append(items, rd)
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return items[i].Name+items[i].ID < items[j].Name+items[j].ID })
	if items == nil {
		items = []state.Reader{}
	}
	writeJSON(w, http.StatusOK, listPage[state.Reader]{Items: items})
}

// validReaderID: installers may name readers (the id printed on the device).
func validReaderID(id string) bool {
	return id != "" && len(id) <= 64 && strings.Trim(strings.ToLower(id), "abcdefghijklmnopqrstuvwxyz0123456789-_.") == ""
}

func (a *API) createReader(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		ID            string `json:"id"`
		Name          string `json:"name"`
		NodeID        string `json:"node_id"`
		SiteID        string `json:"site_id"`
		ReaderConfig  string `json:"reader_config"`
		Transport     string `json:"transport"`
		BLEAdapter    string `json:"ble_adapter"`
		UnlockSeconds int    `json:"unlock_seconds"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.ID == "" {
		req.ID = newID()
	} else if !validReaderID(req.ID) {
		writeError(w, http.StatusBadRequest, "invalid_value", "id", "a reader id is 1 to 64 letters, digits, dots, dashes or underscores")
		return
	}
	if _, ok := a.findSite(w, p, req.SiteID); !ok {
		return
	}
	if !a.knownNode(w, req.NodeID) {
		return
	}
	val, ok := a.write(w, r, p, &command.CreateReader{ID: req.ID, AccountID: p.Account.ID, SiteID: req.SiteID, NodeID: req.NodeID,
		Name: req.Name, ReaderConfig: req.ReaderConfig, Transport: req.Transport, BLEAdapter: req.BLEAdapter, UnlockSeconds: req.UnlockSeconds})
	if ok {
		var rd state.Reader
		jsonUnmarshal(val, &rd)
		writeJSON(w, http.StatusCreated, rd)
	}
}

// knownNode refuses a reader on a node the cluster does not have: its door
// would never be run. An empty id is left to the state's own refusal.
func (a *API) knownNode(w http.ResponseWriter, id string) bool {
	if id == "" || a.svc.KnowsNode(id) {
		return true
	}
	writeError(w, http.StatusBadRequest, "node_not_found", "node_id",
		fmt.Sprintf("there is no node %q in this cluster (or it was removed); GET /api/v1/cluster lists the nodes", id))
	return false
}

func (a *API) patchReader(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		Name          *string `json:"name"`
		NodeID        *string `json:"node_id"`
		ReaderConfig  *string `json:"reader_config"`
		Transport     *string `json:"transport"`
		BLEAdapter    *string `json:"ble_adapter"`
		UnlockSeconds *int    `json:"unlock_seconds"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.NodeID != nil && !a.knownNode(w, *req.NodeID) {
		return
	}
	val, ok := a.write(w, r, p, &command.UpdateReader{ID: r.PathValue("id"), AccountID: p.Account.ID, Name: req.Name, NodeID: req.NodeID,
		ReaderConfig: req.ReaderConfig, Transport: req.Transport, BLEAdapter: req.BLEAdapter, UnlockSeconds: req.UnlockSeconds})
	if ok {
		var rd state.Reader
		jsonUnmarshal(val, &rd)
		writeJSON(w, http.StatusOK, rd)
	}
}

func (a *API) deleteReader(w http.ResponseWriter, r *http.Request, p *Principal) {
	if _, ok := a.write(w, r, p, &command.DeleteReader{ID: r.PathValue("id"), AccountID: p.Account.ID}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *API) listSchedules(w http.ResponseWriter, r *http.Request, p *Principal) {
	var items []state.Schedule
	a.svc.Read(func(s *state.State) {
		for _, sc := range s.Schedules.All() {
			if sc.AccountID == p.Account.ID && p.CanSite(sc.SiteID) {
				items = append(items, sc)
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return items[i].Name+items[i].ID < items[j].Name+items[j].ID })
	if items == nil {
		items = []state.Schedule{}
	}
	writeJSON(w, http.StatusOK, listPage[state.Schedule]{Items: items})
}

func (a *API) createSchedule(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		SiteID   string           `json:"site_id"`
		Name     string           `json:"name"`
		Windows  []command.Window `json:"windows"`
		Holidays []string         `json:"holidays"`
	}
	if !decode(w, r, &req) {
		return
	}
	if _, ok := a.findSite(w, p, req.SiteID); !ok {
		return
	}
	val, ok := a.write(w, r, p, &command.CreateSchedule{ID: newID(), AccountID: p.Account.ID, SiteID: req.SiteID, Name: req.Name,
		Windows: req.Windows, Holidays: req.Holidays})
	if ok {
		var sc state.Schedule
		jsonUnmarshal(val, &sc)
		writeJSON(w, http.StatusCreated, sc)
	}
}

func (a *API) listAccessLevels(w http.ResponseWriter, r *http.Request, p *Principal) {
	var items []state.AccessLevel
	a.svc.Read(func(s *state.State) {
		for _, al := range s.AccessLevels.All() {
			if al.AccountID == p.Account.ID && p.CanSite(al.SiteID) {
				items = append(items, al)
			}
		}
	})
	sort.Slice(items, func(i, j int) bool { return items[i].Name+items[i].ID < items[j].Name+items[j].ID })
	if items == nil {
		items = []state.AccessLevel{}
	}
	writeJSON(w, http.StatusOK, listPage[state.AccessLevel]{Items: items})
}

func (a *API) createAccessLevel(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		SiteID     string   `json:"site_id"`
		Name       string   `json:"name"`
		ReaderIDs  []string `json:"reader_ids"`
		ScheduleID string   `json:"schedule_id"`
	}
	if !decode(w, r, &req) {
		return
	}
	if _, ok := a.findSite(w, p, req.SiteID); !ok {
		return
	}
	val, ok := a.write(w, r, p, &command.CreateAccessLevel{ID: newID(), AccountID: p.Account.ID, SiteID: req.SiteID, Name: req.Name,
		ReaderIDs: req.ReaderIDs, ScheduleID: req.ScheduleID})
	if ok {
		var al state.AccessLevel
		jsonUnmarshal(val, &al)
		writeJSON(w, http.StatusCreated, al)
	}
}

// unlockReader opens the door of a reader on an operator's order; the node
// that runs the reader does it and logs it (SPEC 4.6).
func (a *API) unlockReader(w http.ResponseWriter, r *http.Request, p *Principal) {
	rd, ok := a.findReader(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	defer cancel()
	e, err := a.svc.Unlock(ctx, rd.ID, p.Operator.Email)
	if err != nil {
		if errors.Is(err, reader.ErrUnknown) {
			writeError(w, http.StatusNotFound, "reader_not_found", "", "reader "+rd.ID+" does not exist")
			return
		}
		a.writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// armEnrollment arms a reader: the next phone presented there becomes a
// card of the cardholder (seed 002). seconds: how long it stays armed.
func (a *API) armEnrollment(w http.ResponseWriter, r *http.Request, p *Principal) {
	rd, ok := a.findReader(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		CardholderID string `json:"cardholder_id"`
		Seconds      int    `json:"seconds"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.CardholderID == "" {
		writeError(w, http.StatusBadRequest, "required", "cardholder_id", "give the cardholder_id the next phone presented at this reader is bound to")
		return
	}
	if req.Seconds == 0 {
		req.Seconds = 120
	}
	if req.Seconds < 10 || time.Duration(req.Seconds)*time.Second > state.MaxEnrollmentArm {
		writeError(w, http.StatusBadRequest, "invalid_value", "seconds", "a reader stays armed for 10 to 3600 seconds")
		return
	}
	val, ok := a.write(w, r, p, &command.ArmEnrollment{ReaderID: rd.ID, AccountID: p.Account.ID, CardholderID: req.CardholderID,
		Until: a.now().UTC().Add(time.Duration(req.Seconds) * time.Second)})
	if ok {
		var out state.Reader
		jsonUnmarshal(val, &out)
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *API) disarmEnrollment(w http.ResponseWriter, r *http.Request, p *Principal) {
	rd, ok := a.findReader(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	val, ok := a.write(w, r, p, &command.ArmEnrollment{ReaderID: rd.ID, AccountID: p.Account.ID, Disarm: true})
	if ok {
		var out state.Reader
		jsonUnmarshal(val, &out)
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *API) findReader(w http.ResponseWriter, p *Principal, id string) (state.Reader, bool) {
	var rd state.Reader
	ok := a.readFresh(func(s *state.State) bool {
		var found bool
		rd, found = s.Readers.Get(id)
		return found && rd.AccountID == p.Account.ID && p.CanSite(rd.SiteID)
	})
	if !ok {
		writeError(w, http.StatusNotFound, "reader_not_found", "", "there is no reader "+id+" in your account")
	}
	return rd, ok
}
