package console

import (
	"net/http"

	"lintel/ui/api"
)

func (c *Console) cluster(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	page := ClusterPage{Chrome: c.chrome(r, p, "cluster"), Now: c.now()}
	if !p.Profile.Allows("cluster", "view") {
		page.Error = "Your profile does not allow viewing the cluster; ask an administrator."
		render(w, r, http.StatusForbidden, Cluster(page))
		return
	}
	ctx, cancel := writeContext(r)
	defer cancel()
	view, err := c.svc.Cluster(ctx)
	if err != nil {
		page.Error = "The cluster view could not be read (" + err.Error() + "). Reload the page in a moment."
		w.Header().Set("Retry-After", "1")
		render(w, r, http.StatusServiceUnavailable, Cluster(page))
		return
	}
	page.Leader, page.Term = view.Leader, view.Term
	for _, n := range view.Nodes {
		row := NodeRow{
			ID: n.ID, Building: n.Building, Suffrage: n.Suffrage, RaftState: n.RaftState, GossipState: n.GossipState,
			AppliedIndex: n.AppliedIndex, Leader: n.ID == view.Leader, Self: n.ID == c.nodeID,
		}
		if n.LastContact != nil {
			t := n.LastContact.In(c.loc)
			row.LastContact = &t
		}
		page.Nodes = append(page.Nodes, row)
	}
	render(w, r, http.StatusOK, Cluster(page))
}
