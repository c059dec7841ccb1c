package api

import (
	"net/http"

	"lintel/consensus/state"
)

// selfCheck runs the ledger and registry invariants (SPEC 5.4) on this
// node's replica: cluster tests call it on every node after faults.
func (a *API) selfCheck(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	var err error
	var index uint64
	a.svc.Read(func(s *state.State) {
		err = s.CheckInvariants()
		index = s.Index
	})
	out := map[string]any{"ok": err == nil, "index": index}
	if err != nil {
		out["error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}
