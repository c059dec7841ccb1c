package console

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"lintel/consensus/state"
)

// The card lists' read model. A site's cards are read from the replica once
// into compact rows, in the index's order (last name, first name, id), with
// the searched text already in lower case; the other sort orders are built
// from them the first time they are asked for. The hub hands over the ids
// of the cards every applied batch changed (Hub.Publish → listCache.changed);
// the next read moves just those rows, so a page of a site with 100 000
// cards costs a scan of small structs, not 100 000 lookups in the state, and
// a change costs a few row moves, not a rebuild. A restore from a snapshot,
// or more changes than are worth moving one by one, drop the model.

// maxMoves is how many changed cards a read moves one by one; past it the
// lists are built again.
const maxMoves = 2048

// listRow is one card of a site as the list shows and searches it.
type listRow struct {
	CardRow
	cursor string // state.CardCursor: the index order
	search string // the searched columns, lower case, NUL-separated
}

// siteList is the read model of one site's user cards. Its slices and map
// are never changed in place, only replaced under the cache's lock, so a
// page may go on reading what it was given.
type siteList struct {
	site   string
	index  uint64     // the state index it reflects
	rows   []*listRow // list order
	byID   map[string]*listRow
	orders map[string][]*listRow
	counts map[string]int
}

type listCache struct {
	mu    sync.Mutex // the models; held while one is built
	sites map[string]*siteList

	pendMu  sync.Mutex // what the hub handed over; never held long (Publish must not wait)
	pending []pendingCard
	fullAt  uint64 // the index of the newest change that drops every model
}

// pendingCard is a card changed at a state index. A reader may hold an
// older version of the state than the hub has heard of (reads take a
// version without a lock), so a change is applied to a model only by a read
// of a state that holds it.
type pendingCard struct {
	id    string
	index uint64
}

// changed takes a batch's changes from the hub.
func (lc *listCache) changed(changes []state.Change) {
	lc.pendMu.Lock()
	defer lc.pendMu.Unlock()
	for _, c := range changes {
		switch {
		case c.Table == "*" || c.Table == "sites" || (c.Table == "cards" && len(lc.pending) >= maxMoves):
			lc.fullAt = max(lc.fullAt, c.Index)
		case c.Table == "cards":
			lc.pending = append(lc.pending, pendingCard{c.ID, c.Index})
		}
	}
}

// list returns the read model of a site as of s (a version of the replica)
// or newer, and its count per status.
func (lc *listCache) list(s *state.State, site string) (*siteList, map[string]int) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.pendMu.Lock()
	pending, fullAt := slices.Clone(lc.pending), lc.fullAt
	lc.pendMu.Unlock()
	at := s.Index
	if lc.sites == nil || len(lc.sites) > 64 { // 64: a bound on memory; the sites in use come back
		lc.sites = map[string]*siteList{}
	}
	for id, l := range lc.sites {
		if fullAt > l.index && fullAt <= at {
			delete(lc.sites, id)
			continue
		}
		if l.index < at {
			var ids []string
			for _, p := range pending {
				if p.index > l.index && p.index <= at {
					ids = append(ids, p.id)
				}
			}
			l.move(s, ids)
			l.index = at
		}
	}
	l, ok := lc.sites[site]
	if !ok {
		l = &siteList{site: site, index: at, byID: map[string]*listRow{}, orders: map[string][]*listRow{}, counts: map[string]int{}}
		for card := range s.SiteCards(site, false, "", "") {
			r := rowFor(card)
			l.rows = append(l.rows, r)
			l.byID[r.ID] = r
			l.counts[card.Status]++
		}
		if fullAt <= at { // else s is older than a change that drops the models: do not keep this one
			lc.sites[site] = l
		}
	}
	// What every model holds now need not wait any more.
	oldest := at
	for _, m := range lc.sites {
		oldest = min(oldest, m.index)
	}
	lc.pendMu.Lock()
	lc.pending = slices.DeleteFunc(lc.pending, func(p pendingCard) bool { return p.index <= oldest })
	lc.pendMu.Unlock()
	return l, l.counts
}

func rowFor(card state.Card) *listRow {
	return &listRow{CardRow: rowOf(card), cursor: state.CardCursor(&card),
		search: strings.ToLower(strings.Join([]string{card.FirstName, card.LastName, card.Email, card.ReaderConfig, card.PrivateID, statusWord(card.Status)}, "\x00"))}
}

// move brings the changed cards' rows up to s: out of their old place and
// into their new one (a card may also have left the list, or joined it), in
// one pass over new slices.
func (l *siteList) move(s *state.State, ids []string) {
	gone := map[string]bool{}
	var in []*listRow
	counts := maps.Clone(l.counts)
	for _, id := range ids {
		if gone[id] {
			continue
		}
		if old, ok := l.byID[id]; ok {
			gone[id] = true
			counts[old.Status]--
			delete(l.byID, id)
		}
		if card, ok := s.Cards.Get(id); ok && card.SiteID == l.site && card.Kind != state.KindConfig {
			gone[id] = true
			r := rowFor(card)
			in = append(in, r)
			l.byID[id] = r
			counts[card.Status]++
		}
	}
	if len(gone) == 0 {
		return
	}
	slices.SortFunc(in, func(a, b *listRow) int { return strings.Compare(a.cursor, b.cursor) })
	rows := make([]*listRow, 0, len(l.rows)+len(in))
	for _, r := range l.rows {
		if gone[r.ID] {
			continue
		}
		for len(in) > 0 && in[0].cursor < r.cursor {
			rows, in = append(rows, in[0]), in[1:]
		}
		rows = append(rows, r)
	}
	rows = append(rows, in...)
	l.rows, l.counts, l.orders = rows, counts, map[string][]*listRow{}
}

// order is the rows in a sort's ascending order (ties by name), built once.
func (lc *listCache) order(l *siteList, sort string) []*listRow {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if sort == "name" {
		return l.rows
	}
	if o, ok := l.orders[sort]; ok {
		return o
	}
	o := slices.Clone(l.rows) // a stable sort of the name order: ties stay by name
	switch sort {
	case "status":
		rank := map[string]int{}
		for i, w := range cardStatusWords {
			rank[w.Status] = i
		}
		slices.SortStableFunc(o, func(a, b *listRow) int { return rank[a.Status] - rank[b.Status] })
	default:
		keys := make(map[*listRow]string, len(o))
		for _, r := range o {
			keys[r] = sortKeyOf(sort, r.CardRow)
		}
		slices.SortStableFunc(o, func(a, b *listRow) int { return strings.Compare(keys[a], keys[b]) })
	}
	l.orders[sort] = o
	return o
}

func sortKeyOf(sort string, r CardRow) string {
	switch sort {
	case "config":
		return strings.ToLower(r.Config)
	case "private_id":
		return fmt.Sprintf("%020s", r.PrivateID) // digits: numeric order
	case "email":
		return strings.ToLower(r.Email)
	}
	return ""
}
