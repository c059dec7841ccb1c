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
	rows   []*listRow // list order
	byID   map[string]*listRow
	orders map[string][]*listRow
	counts map[string]int
}

type listCache struct {
	mu    sync.Mutex // the models; held while one is built
	sites map[string]*siteList

	pendMu  sync.Mutex // what the hub handed over; never held long (Publish must not wait)
	pending []string
	full    bool
}

// changed takes a batch's changes from the hub.
func (lc *listCache) changed(changes []state.Change) {
	lc.pendMu.Lock()
	defer lc.pendMu.Unlock()
	for _, c := range changes {
		switch c.Table {
		case "*", "sites":
			lc.full = true
		case "cards":
			if len(lc.pending) < maxMoves {
				lc.pending = append(lc.pending, c.ID)
			} else {
				lc.full = true
			}
		}
	}
	if lc.full {
		lc.pending = nil
	}
}

// list returns the read model of a site as of s (the replica, under its
// read lock): its rows in list order and the count per status.
func (lc *listCache) list(s *state.State, site string) (*siteList, []*listRow, map[string]int) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.pendMu.Lock()
	ids, full := lc.pending, lc.full
	lc.pending, lc.full = nil, false
	lc.pendMu.Unlock()
	if full || lc.sites == nil || len(lc.sites) > 64 { // 64: a bound on memory; the sites in use come back
		lc.sites = map[string]*siteList{}
	}
	if len(ids) > 0 {
		for _, l := range lc.sites {
			l.move(s, ids)
		}
	}
	l, ok := lc.sites[site]
	if !ok {
		l = &siteList{site: site, byID: map[string]*listRow{}, orders: map[string][]*listRow{}, counts: map[string]int{}}
		for card := range s.SiteCards(site, false, "", "") {
			r := rowFor(card)
			l.rows = append(l.rows, r)
			l.byID[r.ID] = r
			l.counts[card.Status]++
		}
		lc.sites[site] = l
	}
	return l, l.rows, l.counts
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
