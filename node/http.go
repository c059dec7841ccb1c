package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lintel/consensus/state"
	"lintel/replication"
	"lintel/ui/api"
	"lintel/ui/console"
)

func (n *Node) routes() http.Handler {
	svc := service{n}
	a := api.New(svc, n.log, n.URL(), n.cfg.NodeID)
	a.CAPin = n.caPin
	n.api = a
	mux := http.NewServeMux()
	mux.Handle("/api/", a)
	// The links' GET pages are the console's (for a person in a browser);
	// their POSTs are the API's (the wallet app, the set-password form).
	mux.Handle("POST /activate/", a)
	mux.Handle("/wallet/", a)
	mux.Handle("POST /invitation/{token}", a)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", console.New(a, svc, n.cfg.Building, n.cfg.NodeID, n.hub))
	// Forms from another origin are refused; GETs and the API with a bearer token pass.
	return http.NewCrossOriginProtection().Handler(mux)
}

// readyz: ready when a leader is known and this node has applied the
// leader's read index. A follower's own commit index is no guide: it only
// covers the entries it has received so far.
func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	reason := ""
	leader, _ := n.raft.Leader()
	var initialized bool
	n.raft.Read(func(s *state.State) { initialized = s.Initialized })
	unwritten, failing := n.ctrl.Unwritten()
	switch h := n.raft.Halted(); {
	case h != nil:
		reason = "this node stopped applying the log: " + h.Error() + "; upgrade it to the cluster's version (or free its disk) and restart it"
	case !failing.IsZero():
		reason = fmt.Sprintf("the event log cannot be written since %s (%d events held): free the disk of the data dir", failing.UTC().Format(time.RFC3339), unwritten)
	case leader == "":
		reason = "no leader known"
	default:
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		idx, err := n.fwd.ReadIndex(ctx)
		cancel()
		switch {
		case err != nil:
			reason = "the leader did not answer: " + err.Error()
		case n.raft.AppliedIndex() < idx:
			reason = fmt.Sprintf("catching up with the leader: applied %d of %d", n.raft.AppliedIndex(), idx)
		case !initialized:
			reason = "the cluster has not been initialized yet"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"status": "not_ready", "reason": reason})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "ready", "leader": leader, "applied_index": n.raft.AppliedIndex()})
}

// internalRoutes are the calls of the other nodes, served on the Raft
// port's mutual-TLS link only (never on --http).
func (n *Node) internalRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(replication.PathApply, n.fwd.Handler())
	mux.Handle(replication.PathReadIndex, n.fwd.Handler())
	mux.Handle(replication.PathStatus, n.fwd.StatusHandler(n.ownStatus))
	mux.Handle("POST "+replication.PathUnlock, n.unlockHandler())
	mux.Handle("POST "+replication.PathLoginThrottle, n.loginThrottleHandler())
	mux.Handle("POST "+replication.PathMember, n.memberHandler())
	return mux
}
