package console

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// siteCookie remembers the last site the operator worked in: the menu's
// site pages open there (seed 003: "the user dashboard of the last site
// viewed by default"). It holds an id, nothing secret.
const siteCookie = "lintel_site"

// Welcome is the end customer's welcome dashboard (seed 003, figure 3).
type Welcome struct {
	Sites, ReaderConfigs, Cards, Configurators int
	Credits                                    Credits
	SiteID                                     string // where "View more" of the site pages leads
	CanSites, CanCards, CanConfigs, CanCredits bool
}

// siteOf is the site id if it is the operator's account's and one the
// operator may work in.
func siteOf(s *state.State, p *api.Principal, id string) (state.Site, bool) {
	x, ok := s.Sites.Get(id)
	return x, ok && x.AccountID == p.Account.ID && p.CanSite(x.ID)
}

// currentSite is the last site viewed, if it is still the operator's;
// otherwise the first site by name.
func (c *Console) currentSite(r *http.Request, p *api.Principal, s *state.State) string {
	if ck, err := r.Cookie(siteCookie); err == nil {
		if x, ok := siteOf(s, p, ck.Value); ok {
			return x.ID
		}
	}
	for _, x := range s.SitesOf(p.Account.ID) {
		if p.CanSite(x.ID) {
			return x.ID
		}
	}
	return ""
}

// rememberSite sets the site cookie for the site pages.
func rememberSite(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: siteCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 30 * 24 * 3600})
}

func (c *Console) welcome(p *api.Principal, site string) Welcome {
	v := Welcome{SiteID: site,
		CanSites: p.Profile.Allows("sites", "view"), CanCards: p.Profile.Allows("cards", "view"),
		CanConfigs: p.Profile.Allows("reader_configs", "view"), CanCredits: p.Profile.Allows("credits", "view")}
	c.svc.Read(func(s *state.State) {
		for _, x := range s.SitesOf(p.Account.ID) {
			if !p.CanSite(x.ID) {
				continue
			}
			v.Sites++
			u := s.SiteUsage(x.ID)
			v.ReaderConfigs += u.Configurations
			v.Cards += u.Users
			v.Configurators += u.Configurators
		}
		l := s.Accounts.At(p.Account.ID).Credits
		v.Credits = Credits{Available: l.Available(), Alert: l.Alert()}
	})
	return v
}

// dashboard serves GET /: the welcome dashboard.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	ch := c.chrome(r, p, "welcome") // it finds the current site
	ch.LiveURL = "/ws?view=welcome&site=" + url.QueryEscape(ch.SiteID)
	render(w, r, http.StatusOK, WelcomePage(ch, c.welcome(p, ch.SiteID)))
}

// welcomeView keeps the dashboard's counters live; site is where its
// "View more" links lead, as on the page.
type welcomeView struct {
	c    *Console
	site string
}

func (v welcomeView) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "sites", "cards", "reader_configs", "configurators", "accounts") {
		return nil
	}
	return WelcomeCounters(v.c.welcome(p, v.site)).Render(ctx, w)
}

// SiteDashboard is a site's counters (seed 003, figure 55).
type SiteDashboard struct {
	ID, Name       string
	ReaderConfigs  int
	Configurators  int
	Users          map[string]int // user cards per status
	UsersAll       int
	PrivateIDUsers int
	DeviceIDUsers  int
	Configs        map[string]int // configuration cards per status
	ConfigsAll     int
	CanCards       bool
	CanConfigs     bool
	CanDelete      bool
}

// Inactive is the seed's "Inactive / Not-Activated-Yet Users".
func (d SiteDashboard) Inactive() int {
	return d.UsersAll - d.Users[state.CardActivated]
}

func (c *Console) siteDashboard(p *api.Principal, id string) (SiteDashboard, bool) {
	d := SiteDashboard{ID: id, Users: map[string]int{}, Configs: map[string]int{},
		CanCards: p.Profile.Allows("cards", "view"), CanConfigs: p.Profile.Allows("reader_configs", "view"), CanDelete: p.Profile.Allows("sites", "delete")}
	found := false
	c.svc.Read(func(s *state.State) {
		x, ok := siteOf(s, p, id)
		if !ok {
			return
		}
		found, d.Name = true, x.Name
		u := s.SiteUsage(id)
		d.ReaderConfigs, d.Configurators = u.Configurations, u.Configurators
		for card := range s.SiteCards(id, false, "", "") {
			d.Users[card.Status]++
			d.UsersAll++
			if card.Kind == state.KindDeviceID {
				d.DeviceIDUsers++
			} else {
				d.PrivateIDUsers++
			}
		}
		for card := range s.SiteCards(id, true, "", "") {
			d.Configs[card.Status]++
			d.ConfigsAll++
		}
	})
	return d, found
}

// site serves GET /sites/{id}: the site dashboard.
func (c *Console) site(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.Allows("sites", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing customer sites; ask an administrator.")
		return
	}
	d, ok := c.siteDashboard(p, r.PathValue("id"))
	if !ok {
		c.missing(w, r, p, "There is no such customer site in your account.")
		return
	}
	rememberSite(w, d.ID)
	ch := withSite(c.chrome(r, p, "sites"), d.ID, "/ws?view=site&site="+url.QueryEscape(d.ID))
	render(w, r, http.StatusOK, SitePage(ch, d))
}

type siteView struct {
	c  *Console
	id string
}

func (v siteView) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "cards", "reader_configs", "configurators", "sites") {
		return nil
	}
	d, ok := v.c.siteDashboard(p, v.id)
	if !ok {
		return nil
	}
	return SiteCounters(d).Render(ctx, w)
}

// sitePage is a page of a site ("" for its dashboard); without a site yet,
// the site list, where the first one is made.
func sitePage(site, page string) string {
	if site == "" {
		return "/sites"
	}
	return "/sites/" + url.PathEscape(site) + page
}
