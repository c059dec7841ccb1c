package console

import "time"

// Chrome is what the header of every logged-in page shows.
type Chrome struct {
	Building   string
	NodeID     string
	Email      string
	Account    string
	CanCluster bool   // the Cluster link shows only when the profile may view it
	Active     string // "sites", "cards", "cluster"…: the current page in the menu
	SiteID     string // the site the operator works in, for the menu's site pages
	CanCredits bool
	CanOutbox  bool // the messages carry card links: cards view
	Credits    Credits
	LiveURL    string // the page's websocket, /ws?view=…
}

// Credits is the account's credit as the header shows it.
type Credits struct {
	Available int64
	Alert     bool
}

// LoginPage is the login form, with the typed email kept after an error.
type LoginPage struct {
	Building string
	NodeID   string
	Email    string
	Error    string
}

// SiteRow is one line of the customer site list (seed 003, figure 43).
type SiteRow struct {
	ID             string
	Name           string
	CreatedAt      time.Time // already in the display time zone
	Configurations int
	Users          int
	Configurators  int
}

// SitesPage is the dashboard: the customer site list and its forms.
type SitesPage struct {
	Chrome    Chrome
	CanView   bool
	CanCreate bool
	CanDelete bool
	Rows      []SiteRow
	Error     string // why the last add or delete was refused, in words
	Name      string // the name typed into Add, kept after an error
	Q         string // the search
	Blocked   string // a site whose delete was refused: the page links to its dashboard
}

// ClusterPage lists the nodes of the cluster.
type ClusterPage struct {
	Chrome Chrome
	Leader string
	Term   uint64
	Nodes  []NodeRow
	Now    time.Time // to say how long ago a node was last heard from
	Error  string
}

// NodeRow is one node as the cluster page shows it.
type NodeRow struct {
	ID           string
	Building     string
	Suffrage     string
	RaftState    string
	GossipState  string
	AppliedIndex uint64
	LastContact  *time.Time // in the display time zone; nil when never heard from
	Leader       bool
	Self         bool // the node serving this page
}

// MessagePage is a plain page that tells the person what happened.
type MessagePage struct {
	Building string
	Title    string
	Message  string
	Back     string // where the link under the message leads
}
