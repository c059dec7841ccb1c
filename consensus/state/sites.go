package state

import (
	"sort"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state/tz"
)

// Site defaults (SPEC 4.3, 4.4, 5.3).
const (
	DefaultCardCost      = 5
	DefaultActivationTTL = 7 * 24 * time.Hour
	DefaultOfflineGrace  = 24 * time.Hour
	OfflineDeny          = "deny"
	OfflineKeep          = "keep"
)

// Site is a customer site (seed 003 "Creating a customer site").
type Site struct {
	ID                  string        `json:"id"`
	AccountID           string        `json:"account_id"`
	Name                string        `json:"name"`
	CreatedAt           time.Time     `json:"created_at"`
	PrivateIDDuplicates bool          `json:"private_id_duplicates"`
	CardCost            int64         `json:"card_cost"`
	ActivationTTL       time.Duration `json:"activation_ttl"`
	OfflineGrace        time.Duration `json:"offline_grace"`
	OfflinePolicy       string        `json:"offline_policy"`
	// TimeZone (IANA) in which schedules are read. Zones come only from the
	// tz database embedded in the binary (package tz), never the host's
	// zoneinfo, so every node reads them alike.
	TimeZone string `json:"time_zone"`
}

func (s *State) applyCreateSite(c command.Command, b *command.CreateSite, ch *changes) (any, *Rejection) {
	if _, ok := s.Accounts.Get(b.AccountID); !ok {
		return nil, reject(NotFound, "account_not_found", "account_id", "account %s does not exist", b.AccountID)
	}
	if _, ok := s.Sites.Get(b.ID); ok {
		return nil, reject(Conflict, "duplicate_id", "id", "a site with id %s already exists", b.ID)
	}
	name := strings.TrimSpace(b.Name)
	if _, dup := s.siteByName.Get(siteNameKey(b.AccountID, name)); dup {
		return nil, reject(Conflict, "duplicate_name", "name", "a site named %q already exists in this account; choose another name", name)
	}
	site := Site{
		ID: b.ID, AccountID: b.AccountID, Name: name, CreatedAt: c.At.UTC(),
		CardCost: DefaultCardCost, ActivationTTL: DefaultActivationTTL,
		OfflineGrace: DefaultOfflineGrace, OfflinePolicy: OfflineDeny, TimeZone: "UTC",
	}
	s.Sites.Put(b.ID, site)
	s.siteByName.Put(siteNameKey(b.AccountID, name), b.ID)
	ch.put("sites", b.ID)
	return site, nil
}

func (s *State) applyDeleteSite(b *command.DeleteSite, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.ID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "", "site %s does not exist", b.ID)
	}
	// Reader configurations, cards and configurators (later tables) must be
	// deleted first; SiteUsage counts them.
	if u := s.SiteUsage(b.ID); u.Configurations+u.Users+u.Configurators > 0 {
		return nil, reject(Conflict, "site_not_empty", "", "site %q still has %d reader configurations, %d cards and %d configurators; delete them first", site.Name, u.Configurations, u.Users, u.Configurators)
	}
	s.Sites.Delete(b.ID)
	s.siteByName.Delete(siteNameKey(site.AccountID, site.Name))
	ch.del("sites", b.ID)
	return nil, nil
}

// siteNameKey makes site names unique per account, case-insensitively.
func siteNameKey(accountID, name string) string {
	return accountID + "\x00" + strings.ToLower(name)
}

// SiteUsage holds the counts the site list shows (seed 003, figure 43).
type SiteUsage struct {
	Configurations int `json:"configurations"`
	Users          int `json:"users"`
	Configurators  int `json:"configurators"`
}

// SiteUsage counts what a site holds: reader configurations, cards (users
// in the seed's words) and configurators.
func (s *State) SiteUsage(siteID string) SiteUsage {
	u := SiteUsage{Users: s.siteCards.At(siteID)}
	for _, rc := range s.ReaderConfigs.All() {
		if rc.SiteID == siteID {
			u.Configurations++
		}
	}
	for _, cf := range s.Configurators.All() {
		if cf.SiteID == siteID {
			u.Configurators++
		}
	}
	return u
}

// SitesOf lists an account's sites by name.
func (s *State) SitesOf(accountID string) []Site {
	var out []Site
	for _, x := range s.Sites.All() {
		if x.AccountID == accountID {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (s *State) applyUpdateSite(b *command.UpdateSite, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.ID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "", "site %s does not exist", b.ID)
	}
	if b.PrivateIDDuplicates != nil {
		site.PrivateIDDuplicates = *b.PrivateIDDuplicates
	}
	if b.CardCost != nil {
		if *b.CardCost < 0 || *b.CardCost > 1000 {
			return nil, reject(Invalid, "invalid_value", "card_cost", "card_cost must be 0 to 1000 credits")
		}
		site.CardCost = *b.CardCost
	}
	if b.ActivationTTL != nil {
		if *b.ActivationTTL < time.Hour || *b.ActivationTTL > 90*24*time.Hour {
			return nil, reject(Invalid, "invalid_value", "activation_ttl", "activation_ttl must be between 1 hour and 90 days")
		}
		site.ActivationTTL = *b.ActivationTTL
	}
	if b.OfflineGrace != nil {
		if *b.OfflineGrace < time.Minute || *b.OfflineGrace > 30*24*time.Hour {
			return nil, reject(Invalid, "invalid_value", "offline_grace", "offline_grace must be between 1 minute and 30 days")
		}
		site.OfflineGrace = *b.OfflineGrace
	}
	if b.OfflinePolicy != nil {
		if *b.OfflinePolicy != OfflineDeny && *b.OfflinePolicy != OfflineKeep {
			return nil, reject(Invalid, "invalid_value", "offline_policy", "offline_policy must be deny or keep")
		}
		site.OfflinePolicy = *b.OfflinePolicy
	}
	if b.TimeZone != nil {
		if _, err := tz.Load(*b.TimeZone); err != nil {
			return nil, reject(Invalid, "invalid_value", "time_zone", "%q is not a time zone name such as Europe/Paris", *b.TimeZone)
		}
		site.TimeZone = *b.TimeZone
	}
	s.Sites.Put(site.ID, site)
	ch.put("sites", site.ID)
	return site, nil
}

// Location is the site's time zone (UTC if unset or unknown), from the
// embedded tz database; loaded zones are cached, so readers call it per
// decision.
func (x Site) Location() *time.Location {
	if x.TimeZone == "" {
		return time.UTC
	}
	if loc, err := tz.Load(x.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}
