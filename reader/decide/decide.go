// Package decide is the reader's decision engine (SPEC 4.6, 5.2, 5.3, 6.1):
// a pure function of the local replica, the challenge, the presentation and
// the time. It does no I/O and keeps no reference into the state.
package decide

import (
	"slices"
	"time"

	"lintel/consensus/state"
	"lintel/reader/exchange"
)

// Decision is the verdict on one presentation.
type Decision struct {
	Granted bool
	// Reason is a SPEC 4.6 denial word; empty when granted.
	Reason string
	// Delete tells the phone to delete the card (pending_revoke, revoked, lost).
	Delete         bool
	CardID         string
	CardholderName string
	// UseCounted: the card has max_uses, so the caller must commit the use
	// (through Raft) before it opens the door.
	UseCounted bool
}

func deny(r exchange.Reason) Decision { return Decision{Reason: string(r)} }

// Decide decides presentation p, answering challenge ch at reader readerID,
// at now. The caller holds the state's read lock and has already checked the
// nonce against its NonceBook; a presentation for another nonce is still a
// replay here. keys may be nil (the device key is then parsed every time).
//
// Checks, in order: nonce; card known, not a configuration card, of the
// reader's account; status; signature; site; reader configuration; validity
// window; uses; access levels; schedules.
func Decide(s *state.State, readerID string, ch exchange.Challenge, p exchange.Presentation, now time.Time, keys *KeyCache) Decision {
	if p.Nonce != ch.Nonce {
		return deny(exchange.ReasonReplay)
	}
	rd, readerOK := s.Readers.Get(readerID)
	c, ok := s.Cards.Get(p.CardID)
	if !ok || c.Kind == state.KindConfig || (readerOK && c.AccountID != rd.AccountID) {
		return deny(exchange.ReasonUnknownCard)
	}
	d := Decision{CardID: c.ID, CardholderName: name(c)}
	refuse := func(r exchange.Reason) Decision { d.Reason = string(r); return d }
	switch c.Status {
	case state.CardActivated:
	case state.CardLost:
		d.Delete = true
		return refuse(exchange.ReasonLost)
	case state.CardPendingRevoke, state.CardRevoked:
		d.Delete = true
		return refuse(exchange.ReasonRevoked)
	default: // created, sent, expired
		return refuse(exchange.ReasonNotActivated)
	}
	if !verify(c, readerID, ch, p, keys) {
		return refuse(exchange.ReasonBadSignature)
	}
	if !readerOK || rd.SiteID != c.SiteID {
		return refuse(exchange.ReasonWrongReader)
	}
	if c.Kind == state.KindPrivateID && c.ReaderConfig != rd.ReaderConfig {
		return refuse(exchange.ReasonWrongReader)
	}
	if c.ValidFrom != nil && now.Before(*c.ValidFrom) {
		return refuse(exchange.ReasonNotYetValid)
	}
	if c.ValidUntil != nil && !now.Before(*c.ValidUntil) {
		return refuse(exchange.ReasonExpired)
	}
	if c.MaxUses > 0 && c.Uses >= c.MaxUses {
		return refuse(exchange.ReasonUsesExhausted)
	}
	if len(c.AccessLevels) > 0 {
		if r := levels(s, c, readerID, now); r != exchange.ReasonNone {
			return refuse(r)
		}
	}
	d.Granted = true
	d.UseCounted = c.MaxUses > 0
	return d
}

// levels applies the card's access levels at this reader: some level must
// list the reader, and one of those must have no schedule or an open one.
func levels(s *state.State, c state.Card, readerID string, now time.Time) exchange.Reason {
	listed := false
	var loc *time.Location
	for _, id := range c.AccessLevels {
		al, ok := s.AccessLevels.Get(id)
		if !ok || al.SiteID != c.SiteID || !slices.Contains(al.ReaderIDs, readerID) {
			continue
		}
		listed = true
		if al.ScheduleID == "" {
			return exchange.ReasonNone
		}
		sc, ok := s.Schedules.Get(al.ScheduleID)
		if !ok {
			continue // a schedule that is gone admits nobody
		}
		if loc == nil {
			loc = location(s.Sites.At(c.SiteID))
		}
		if sc.OpenAt(now, loc) {
			return exchange.ReasonNone
		}
	}
	if !listed {
		return exchange.ReasonWrongReader
	}
	return exchange.ReasonOutsideSchedule
}

func name(c state.Card) string {
	switch {
	case c.FirstName == "":
		return c.LastName
	case c.LastName == "":
		return c.FirstName
	}
	return c.FirstName + " " + c.LastName
}

// verify checks p's signature by the card's bound device key over the
// message exchange.Verify checks, for the reader that decides: it is
// exchange.VerifyWithKey with the key parsed once and kept in keys.
func verify(c state.Card, readerID string, ch exchange.Challenge, p exchange.Presentation, keys *KeyCache) bool {
	if c.Device == nil || ch.ReaderID != readerID {
		return false
	}
	k := keys.Get(c.ID, c.Device.PublicKey)
	return k != nil && exchange.VerifyWithKey(p, ch, k) == nil
}

// location is the site's time zone: Site.Location, which loads it from the
// tz database embedded in the binary (never the host's) and keeps it.
func location(site state.Site) *time.Location {
	return site.Location()
}
