package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/pki"
)

// ClusterView is GET /api/v1/cluster (SPEC 4.1).
type ClusterView struct {
	Leader string     `json:"leader"`
	Term   uint64     `json:"term"`
	Nodes  []NodeView `json:"nodes"`
}

// NodeView is one node of the cluster view.
type NodeView struct {
	ID           string     `json:"id"`
	Building     string     `json:"building"`
	HTTPAddr     string     `json:"http_addr"`
	RaftAddr     string     `json:"raft_addr"`
	GossipAddr   string     `json:"gossip_addr"`
	Suffrage     string     `json:"suffrage"`
	RaftState    string     `json:"raft_state"`
	GossipState  string     `json:"gossip_state"`
	AppliedIndex uint64     `json:"applied_index"`
	LastContact  *time.Time `json:"last_contact"`
}

// ErrNodeNotFound is returned by RemoveNode for an id that is not a member.
var ErrNodeNotFound = errors.New("no such node")

func (a *API) getCluster(w http.ResponseWriter, r *http.Request, p *Principal) {
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout)
	defer cancel()
	v, err := a.svc.Cluster(ctx)
	if err != nil {
		a.writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// snapshot writes a snapshot of the answering node's replica now (before
// maintenance, or to compact its log); administrators only.
func (a *API) snapshot(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !clusterAdmin(p) {
		writeError(w, http.StatusForbidden, "forbidden", "", "only an administrator of the cluster's own account may snapshot a node")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	idx, err := a.svc.Snapshot(ctx)
	if err != nil {
		writeError(w, http.StatusConflict, "snapshot_failed", "", "no snapshot was taken: "+err.Error()+"; try again in a moment")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": idx})
}

func (a *API) removeNode(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !clusterAdmin(p) {
		writeError(w, http.StatusForbidden, "forbidden", "", "only an administrator of the cluster's own account may remove a node")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*WriteTimeout)
	defer cancel()
	err := a.svc.RemoveNode(ctx, p.Operator.ID, r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNodeNotFound):
		writeError(w, http.StatusNotFound, "node_not_found", "", "there is no node "+r.PathValue("id")+" in the cluster")
	case err != nil:
		a.writeServiceError(w, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// joinTokenView is GET/POST /api/v1/cluster/join-token: the token a new
// building joins with (lintel serve --join ADDR --join-token TOKEN), and
// the CA fingerprint it carries.
type joinTokenView struct {
	JoinToken     string `json:"join_token"`
	CAFingerprint string `json:"ca_fingerprint"`
}

func (a *API) getJoinToken(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !clusterAdmin(p) {
		writeError(w, http.StatusForbidden, "forbidden", "", "only an administrator of the cluster's own account may read the join token")
		return
	}
	var tok string
	a.svc.Read(func(s *state.State) { tok = s.TLS.JoinToken })
	t, err := pki.ParseJoinToken(tok)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "", "this node has not caught up with the cluster's certificate authority yet; try again in a moment")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, joinTokenView{JoinToken: tok, CAFingerprint: t.CAFingerprint})
}

// rotateJoinToken makes a new token; the old one lets nobody in from then on.
func (a *API) rotateJoinToken(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !clusterAdmin(p) {
		writeError(w, http.StatusForbidden, "forbidden", "", "only an administrator of the cluster's own account may rotate the join token")
		return
	}
	var caPEM []byte
	a.svc.Read(func(s *state.State) { caPEM = s.TLS.CACert })
	ca, err := pki.ParseCert(caPEM)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "", "this node has not caught up with the cluster's certificate authority yet; try again in a moment")
		return
	}
	t, err := pki.NewJoinToken(&pki.CA{Cert: ca})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "", err.Error())
		return
	}
	if _, ok := a.write(w, r, p, &command.SetJoinToken{JoinToken: t.String()}); !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, joinTokenView{JoinToken: t.String(), CAFingerprint: t.CAFingerprint})
}

// clusterAdmin: the cluster is the installation's, not a customer's: only
// an administrator of the account the cluster was made with (the one with
// no parent) may change or read what lets nodes in. Every account has an
// Administrator profile of its own.
func clusterAdmin(p *Principal) bool {
	return p.Profile.Name == state.AdministratorProfile && p.Account.ParentID == ""
}
