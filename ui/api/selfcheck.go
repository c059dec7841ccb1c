package api

import (
	"net/http"

	"lintel/consensus/state"
)

// selfCheck runs the ledger and registry invariants (SPEC 5.4) on this
// node's replica, and gives the digest of the replica at the index it
// reflects: cluster tests compare it across nodes after faults.
func (a *API) selfCheck(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	var err error
	var index uint64
	var snap *state.Snapshot
	a.svc.Read(func(s *state.State) {
		err = s.CheckInvariants()
		index = s.Index
		// The copy and the index are taken together; hashing it runs
		// after the lock is released, so applies do not wait for it.
		snap = s.Snapshot()
	})
	digest, derr := snap.Digest()
	if derr != nil {
		writeError(w, http.StatusInternalServerError, "digest_failed", "", "the state digest could not be made: "+derr.Error())
		return
	}
	// index is kept for earlier clients; applied_index says what it is.
	out := map[string]any{"ok": err == nil, "index": index, "applied_index": index, "digest": digest}
	if err != nil {
		out["error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}
