package state

import (
	"iter"
	"strings"
)

// SiteCards yields a site's cards in list order (last name, first name, id:
// CardCursor) from an index, so a page costs what it shows, not a scan of
// every card. config picks the configuration cards instead of the user
// cards; status, when set, only cards in that status; after, when set, starts
// after the card with that cursor.
func (s *State) SiteCards(siteID string, config bool, status, after string) iter.Seq[Card] {
	return func(yield func(Card) bool) {
		idx, prefix := s.cardList, cardListPrefix(siteID, config)
		if status != "" {
			idx, prefix = s.cardStatusList, prefix+status+"\x00"
		}
		for k, id := range idx.From(prefix + after) {
			if !strings.HasPrefix(k, prefix) {
				return
			}
			if after != "" && k == prefix+after {
				continue
			}
			if c, ok := s.Cards.Get(id); ok && !yield(c) {
				return
			}
		}
	}
}

// Why an activation link does not work (ActivationLink).
const (
	LinkUsable   = ""
	LinkUsed     = "used"
	LinkExpired  = "expired"
	LinkReplaced = "replaced"
	LinkUnknown  = "unknown"
)

// ActivationLink finds the card of an activation link by the link's hash
// and tells whether it still works on the state clock, or why not. For a
// link that never existed the card is zero.
func (s *State) ActivationLink(hash string) (Card, string) {
	if id, ok := s.cardByLink.Get(hash); ok {
		c := s.Cards.At(id)
		switch {
		case c.Status != CardSent:
			return c, LinkUsed
		case c.LinkExpires == nil || !s.Clock.Before(*c.LinkExpires):
			return c, LinkExpired
		}
		return c, LinkUsable
	}
	if id, ok := s.cardByOldLink.Get(hash); ok {
		c := s.Cards.At(id)
		switch c.OldLinkWhy {
		case "used":
			return c, LinkUsed
		case "expired":
			return c, LinkExpired
		}
		return c, LinkReplaced
	}
	return Card{}, LinkUnknown
}
