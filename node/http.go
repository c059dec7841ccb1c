package node

import (
	"encoding/json"
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
	a := api.New(svc, n.log)
	mux := http.NewServeMux()
	mux.Handle("/api/", a)
	mux.Handle(replication.PathApply, n.fwd.Handler())
	mux.Handle(replication.PathReadIndex, n.fwd.Handler())
	mux.Handle(replication.PathStatus, n.fwd.StatusHandler(n.ownStatus))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", console.New(a, svc, n.cfg.Building, n.cfg.NodeID))
	// Forms from another origin are refused; GETs and the API with a bearer token pass.
	return http.NewCrossOriginProtection().Handler(mux)
}

// readyz: ready when a leader is known and this node has applied the
// commit index the leader last told it.
func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	reason := ""
	leader, _ := n.raft.Leader()
	var initialized bool
	n.raft.Read(func(s *state.State) { initialized = s.Initialized })
	switch {
	case leader == "":
		reason = "no leader known"
	case !n.raft.CaughtUp():
		reason = "catching up with the leader"
	case !initialized:
		reason = "the cluster has not been initialized yet"
	case !n.raft.IsLeader() && time.Since(n.raft.LastContact()) > 3*time.Second:
		reason = "no contact with the leader for over 3s"
	}
	w.Header().Set("Content-Type", "application/json")
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"status": "not_ready", "reason": reason})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "ready", "leader": leader, "applied_index": n.raft.AppliedIndex()})
}
