package state

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/immutable"

	"lintel/consensus/command"
)

// Card statuses (SPEC section 4): machine names; the console shows the seeds' words.
const (
	CardCreated       = "created"
	CardSent          = "sent"
	CardActivated     = "activated"
	CardPendingRevoke = "pending_revoke"
	CardRevoked       = "revoked"
	CardLost          = "lost"
	CardExpired       = "expired"
)

// Card kinds: a blue private-ID card carries the number of the access
// control system; an orange device-ID card identifies the phone itself.
const (
	KindPrivateID = "private_id"
	KindDeviceID  = "device_id"
)

// Device is the phone a card is bound to (one device per card, SPEC 5.2).
type Device struct {
	PublicKey []byte    `json:"public_key"` // P-256, PKIX DER
	BoundAt   time.Time `json:"bound_at"`
}

// Card is a virtual user card.
type Card struct {
	ID           string            `json:"id"`
	SiteID       string            `json:"site_id"`
	AccountID    string            `json:"account_id"`
	Kind         string            `json:"kind"`
	Status       string            `json:"status"`
	ReaderConfig string            `json:"reader_config"`
	PrivateID    string            `json:"private_id"`
	CardholderID string            `json:"cardholder_id"`
	FirstName    string            `json:"first_name"`
	LastName     string            `json:"last_name"`
	Email        string            `json:"email"`
	Phone        string            `json:"phone"`
	ValidFrom    *time.Time        `json:"valid_from"`
	ValidUntil   *time.Time        `json:"valid_until"`
	MaxUses      int64             `json:"max_uses"`
	Uses         int64             `json:"uses"`
	AccessLevels []string          `json:"access_levels"`
	Fields       map[string]string `json:"fields"`
	// Credits is the cost reserved (sent) or debited (activated) for this card.
	Credits     int64      `json:"credits"`
	CreatedAt   time.Time  `json:"created_at"`
	SentAt      *time.Time `json:"sent_at"`
	ActivatedAt *time.Time `json:"activated_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	Device      *Device    `json:"device"`
	LinkHash    string     `json:"link_hash,omitempty"`
	LinkExpires *time.Time `json:"link_expires,omitempty"`
	// OldLink is the card's previous link and why it stopped working, so a
	// holder who opens it again is told the truth (used, expired, replaced).
	OldLink    string `json:"old_link,omitempty"`
	OldLinkWhy string `json:"old_link_why,omitempty"`
	MessageID  string `json:"message_id,omitempty"` // the last activation message
}

// holdsCredits reports whether the card's credits are debited and in use.
func (c Card) holdsCredits() bool {
	return c.Status == CardActivated || c.Status == CardPendingRevoke
}

// counts reports whether the card takes part in the uniqueness rules: a
// lost card stays in the registry but its number and its place are free.
func (c Card) counts() bool { return c.Status != CardLost }

func ptime(t time.Time) *time.Time { u := t.UTC(); return &u }

// retireLink ends the card's live link, remembering why.
func (c *Card) retireLink(why string) {
	if c.LinkHash != "" {
		c.OldLink, c.OldLinkWhy = c.LinkHash, why
	}
	c.LinkHash, c.LinkExpires = "", nil
}

func (s *State) card(id, accountID string) (Card, *Rejection) {
	c, ok := s.Cards.Get(id)
	if !ok || (accountID != "" && c.AccountID != accountID) {
		return Card{}, reject(NotFound, "card_not_found", "", "card %s does not exist", id)
	}
	return c, nil
}

func (s *State) putCard(c Card, ch *changes) {
	old, ok := s.Cards.Get(c.ID)
	reindex := !ok || indexedAs(old) != indexedAs(c)
	if ok && reindex {
		s.unindexCard(old)
	}
	s.Cards.Put(c.ID, c)
	if reindex {
		s.indexCard(c)
	}
	ch.put("cards", c.ID)
}

// cardIndexed is what the card indexes read of a card: a change elsewhere
// (a phone number, a use) leaves them as they are.
type cardIndexed struct {
	id, site, kind, status, last, first, config, pid, holder, link, oldLink string
}

func indexedAs(c Card) cardIndexed {
	return cardIndexed{c.ID, c.SiteID, c.Kind, c.Status, c.LastName, c.FirstName, c.ReaderConfig, c.PrivateID, c.CardholderID, c.LinkHash, c.OldLink}
}

func (s *State) dropCard(c Card, ch *changes) {
	s.unindexCard(c)
	s.Cards.Delete(c.ID)
	ch.del("cards", c.ID)
}

func privateIDKey(siteID, config, pid string) string { return siteID + "\x00" + config + "\x00" + pid }
func holderConfigKey(holder, config string) string   { return holder + "\x00" + config }

// cardListKey orders a site's cards as the card lists show them: user cards
// apart from configuration cards, by last name, first name and id (the
// API's cursor is the part after the list).
func cardListKey(c *Card) string {
	return cardListPrefix(c.SiteID, c.Kind == KindConfig) + CardCursor(c)
}

func cardStatusListKey(c *Card) string {
	return cardListPrefix(c.SiteID, c.Kind == KindConfig) + c.Status + "\x00" + CardCursor(c)
}

// cardListPrefix is the prefix of one of a site's two card lists in the indexes.
func cardListPrefix(siteID string, config bool) string {
	if config {
		return siteID + "\x00c\x00"
	}
	return siteID + "\x00u\x00"
}

// CardCursor is a card's place in its site's list: last name, first name, id.
func CardCursor(c *Card) string { return c.LastName + "\x00" + c.FirstName + "\x00" + c.ID }

func (s *State) indexCard(c Card) {
	if c.LinkHash != "" {
		s.cardByLink.Put(c.LinkHash, c.ID)
	}
	if c.OldLink != "" {
		s.cardByOldLink.Put(c.OldLink, c.ID)
	}
	s.cardList.Put(cardListKey(&c), c.ID)
	s.cardStatusList.Put(cardStatusListKey(&c), c.ID)
	if !c.counts() {
		return
	}
	if c.Kind == KindPrivateID {
		s.privateIDs.Add(privateIDKey(c.SiteID, c.ReaderConfig, c.PrivateID), 1)
	}
	s.holderConfigs.Add(holderConfigKey(c.CardholderID, c.ReaderConfig), 1)
	if c.Kind != KindConfig {
		s.siteCards.Add(c.SiteID, 1)
	}
}

func (s *State) unindexCard(c Card) {
	if c.LinkHash != "" {
		s.cardByLink.Delete(c.LinkHash)
	}
	if c.OldLink != "" {
		s.cardByOldLink.Delete(c.OldLink)
	}
	s.cardList.Delete(cardListKey(&c))
	s.cardStatusList.Delete(cardStatusListKey(&c))
	if !c.counts() {
		return
	}
	if c.Kind == KindPrivateID {
		s.privateIDs.Add(privateIDKey(c.SiteID, c.ReaderConfig, c.PrivateID), -1)
	}
	s.holderConfigs.Add(holderConfigKey(c.CardholderID, c.ReaderConfig), -1)
	if c.Kind != KindConfig {
		s.siteCards.Add(c.SiteID, -1)
	}
}

// cardIndexes collects the card indexes of a restore, to build each at once.
type cardIndexes struct {
	link, oldLink []entry[string]
	list          []listEntry
	groups        map[string]int32 // site, list → its number in groupKeys
	groupKeys     []string
	// a key per card counted, counted in into
	privateIDs, holderConfigs, siteCards []string
}

// listEntry is a card's place in the card lists, sortable cheaply: its
// site and list as a number, then the first bytes of its cursor as an
// integer, then the whole cursor (cardListKey is the group's key, then
// the cursor; cardStatusListKey puts the status in between).
type listEntry struct {
	group              int32
	head               uint64
	cursor, id, status string
}

func newCardIndexes(n int) *cardIndexes {
	return &cardIndexes{
		list: make([]listEntry, 0, n), groups: map[string]int32{},
		privateIDs: make([]string, 0, n), holderConfigs: make([]string, 0, n), siteCards: make([]string, 0, n),
	}
}

func (b *cardIndexes) add(c *Card) {
	if c.LinkHash != "" {
		b.link = append(b.link, entry[string]{c.LinkHash, c.ID})
	}
	if c.OldLink != "" {
		b.oldLink = append(b.oldLink, entry[string]{c.OldLink, c.ID})
	}
	gk := cardListPrefix(c.SiteID, c.Kind == KindConfig)
	g, ok := b.groups[gk]
	if !ok {
		g = int32(len(b.groupKeys))
		b.groups[gk] = g
		b.groupKeys = append(b.groupKeys, gk)
	}
	cur := CardCursor(c)
	var h [8]byte
	copy(h[:], cur)
	b.list = append(b.list, listEntry{g, binary.BigEndian.Uint64(h[:]), cur, c.ID, c.Status})
	if !c.counts() {
		return
	}
	if c.Kind == KindPrivateID {
		b.privateIDs = append(b.privateIDs, privateIDKey(c.SiteID, c.ReaderConfig, c.PrivateID))
	}
	b.holderConfigs = append(b.holderConfigs, holderConfigKey(c.CardholderID, c.ReaderConfig))
	if c.Kind != KindConfig {
		b.siteCards = append(b.siteCards, c.SiteID)
	}
}

// into builds the indexes into s. The card list is sorted once; the
// status list is the same order split by status (a stable partition), so
// it needs no sort of its own. The counts and the link indexes build on a
// second goroutine while this one sorts, and the status list while this one
// builds the list: a restore is CPU work that can use more than one core.
func (b *cardIndexes) into(s *State) {
	var wg sync.WaitGroup
	wg.Go(func() {
		s.privateIDs = countKeys(b.privateIDs)
		s.holderConfigs = countKeys(b.holderConfigs)
		s.siteCards = countKeys(b.siteCards)
		s.cardByLink, s.cardByOldLink = buildIndex(b.link), buildIndex(b.oldLink)
	})
	// Groups in key order, so that sorting by group number sorts by key.
	order := slices.Clone(b.groupKeys)
	slices.Sort(order)
	rank := make([]int32, len(b.groupKeys))
	for i, k := range order {
		rank[b.groups[k]] = int32(i)
	}
	for i := range b.list {
		b.list[i].group = rank[b.list[i].group]
	}
	slices.SortFunc(b.list, func(x, y listEntry) int {
		return cmp.Or(cmp.Compare(x.group, y.group), cmp.Compare(x.head, y.head), strings.Compare(x.cursor, y.cursor))
	})
	wg.Go(func() {
		byStatus := map[string][]*listEntry{} // group key + status → entries in list order
		for i := range b.list {
			e := &b.list[i]
			k := order[e.group] + e.status + "\x00"
			byStatus[k] = append(byStatus[k], e)
		}
		status := immutable.NewSortedMapBuilder[string, string](keyOrder{})
		for _, k := range slices.Sorted(maps.Keys(byStatus)) {
			for _, e := range byStatus[k] {
				status.Set(k+e.cursor, e.id)
			}
		}
		s.cardStatusList = index[string]{status.Map()}
	})
	list := immutable.NewSortedMapBuilder[string, string](keyOrder{})
	for i := range b.list {
		e := &b.list[i]
		list.Set(order[e.group]+e.cursor, e.id)
	}
	s.cardList = index[string]{list.Map()}
	wg.Wait()
}

// checkPrivateID enforces one private id per reader configuration, unless
// the site allows duplicates (seed 003, "Authorizing private ID duplicates").
func (s *State) checkPrivateID(site Site, config, pid string) *Rejection {
	if !site.PrivateIDDuplicates && s.privateIDs.At(privateIDKey(site.ID, config, pid)) > 0 {
		return reject(Conflict, "duplicate_private_id", "private_id",
			"private id %s is already used by a card of configuration %q; choose another, or allow duplicates on the site", pid, config)
	}
	return nil
}

func validPrivateID(pid string) *Rejection {
	if pid == "" {
		return reject(Invalid, "required", "private_id", "a private id card needs private_id: the number recorded in the access control system")
	}
	if len(pid) > 20 || strings.Trim(pid, "0123456789") != "" {
		return reject(Invalid, "invalid_value", "private_id", "private_id must be 1 to 20 digits")
	}
	return nil
}

func (s *State) applyCreateCard(c command.Command, b *command.CreateCard, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.SiteID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "site_id", "site %s does not exist", b.SiteID)
	}
	if _, ok := s.Cards.Get(b.ID); ok {
		return nil, reject(Conflict, "duplicate_id", "id", "a card with id %s already exists", b.ID)
	}
	card := Card{
		ID: b.ID, SiteID: b.SiteID, AccountID: b.AccountID, Kind: b.Kind, Status: CardCreated,
		ValidFrom: b.ValidFrom, ValidUntil: b.ValidUntil, MaxUses: b.MaxUses,
		AccessLevels: slices.Clone(b.AccessLevels), Fields: maps.Clone(b.Fields), CreatedAt: c.At.UTC(),
	}
	switch b.Kind {
	case KindPrivateID:
		if _, ok := s.readerConfigByName(b.AccountID, b.ReaderConfig); !ok {
			return nil, reject(NotFound, "reader_config_not_found", "reader_config", "there is no reader configuration named %q in this account; import it first", b.ReaderConfig)
		}
		if r := validPrivateID(b.PrivateID); r != nil {
			return nil, r
		}
		if r := s.checkPrivateID(site, b.ReaderConfig, b.PrivateID); r != nil {
			return nil, r
		}
		card.ReaderConfig, card.PrivateID = b.ReaderConfig, b.PrivateID
	case KindDeviceID:
		if b.PrivateID != "" || b.ReaderConfig != "" {
			return nil, reject(Invalid, "invalid_value", "kind", "a device_id card takes no private_id or reader_config; use kind private_id for those")
		}
	default:
		return nil, reject(Invalid, "invalid_value", "kind", "kind must be private_id or device_id")
	}
	if r := s.checkAccessLevels(b.SiteID, b.AccessLevels); r != nil {
		return nil, r
	}
	if r := validateWindow(b.ValidFrom, b.ValidUntil, b.MaxUses); r != nil {
		return nil, r
	}
	holder, rej := s.cardholderForCard(c, b, ch)
	if rej != nil {
		return nil, rej
	}
	if s.holderConfigs.At(holderConfigKey(holder.ID, card.ReaderConfig)) > 0 {
		return nil, reject(Conflict, "duplicate_card", "cardholder_id",
			"%s %s already holds a card of this configuration; one person cannot hold two cards of the same configuration", holder.FirstName, holder.LastName)
	}
	card.CardholderID = holder.ID
	card.FirstName, card.LastName, card.Email, card.Phone = holder.FirstName, holder.LastName, holder.Email, holder.Phone
	if card.ValidFrom == nil && holder.Visitor {
		card.ValidFrom, card.ValidUntil = holder.ValidFrom, holder.ValidUntil
	}
	if holder.Email == "" {
		return nil, reject(Invalid, "required", "email", "the card's holder needs an email address: the activation link is sent there")
	}
	if b.NewCardholder != nil {
		s.Cardholders.Put(holder.ID, holder)
		ch.put("cardholders", holder.ID)
	}
	s.putCard(card, ch)
	return card, nil
}

// cardholderForCard finds the card's holder, or makes the one described.
// A new holder is stored by the caller only once every check has passed.
func (s *State) cardholderForCard(c command.Command, b *command.CreateCard, ch *changes) (Cardholder, *Rejection) {
	if b.CardholderID != "" {
		h, ok := s.Cardholders.Get(b.CardholderID)
		if !ok || h.AccountID != b.AccountID {
			return Cardholder{}, reject(NotFound, "cardholder_not_found", "cardholder_id", "cardholder %s does not exist", b.CardholderID)
		}
		return h, nil
	}
	if b.NewCardholder == nil {
		return Cardholder{}, reject(Invalid, "required", "cardholder_id", "give cardholder_id, or first_name, last_name and email for a new cardholder")
	}
	nh := *b.NewCardholder
	nh.AccountID = b.AccountID
	if r := validateCardholder(&nh); r != nil {
		return Cardholder{}, r
	}
	if _, ok := s.Cardholders.Get(nh.ID); ok {
		return Cardholder{}, reject(Conflict, "duplicate_id", "cardholder_id", "a cardholder with id %s already exists", nh.ID)
	}
	return newCardholder(c, &nh), nil
}

func (s *State) applySendCard(c command.Command, b *command.SendCard, ch *changes) (any, *Rejection) {
	card, rej := s.card(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	acc := s.Accounts.At(card.AccountID)
	site := s.Sites.At(card.SiteID)
	switch card.Status {
	case CardSent:
		// Resend: a new link replaces the old; the reservation stays.
	case CardCreated, CardExpired, CardRevoked:
		// First send, or re-issue after expiry or revoke (to a new phone).
		cost := site.CardCost
		if card.Kind == KindConfig {
			cost = 0 // configuration cards are free (seed 003)
		}
		l, rej := acc.Credits.reserve(cost)
		if rej != nil {
			return nil, rej
		}
		acc.Credits = l
		card.Credits = cost
		card.Device = nil
		card.ActivatedAt, card.RevokedAt = nil, nil
	case CardActivated:
		return nil, reject(Conflict, "already_activated", "", "this card is activated on a phone; revoke it before sending it again")
	default:
		return nil, reject(Conflict, "invalid_status", "", "a card in status %s cannot be sent", card.Status)
	}
	// Link expiry is judged on the state clock (leader time), as activation
	// and ExpireLinks judge it: a link already dead there is refused.
	if b.LinkHash == "" || !b.LinkExpires.After(s.Clock) {
		return nil, reject(Invalid, "invalid_command", "", "a send needs a link hash and a link expiry after now")
	}
	if s.cardByLink.Has(b.LinkHash) {
		return nil, reject(Conflict, "duplicate_link", "", "that activation link is already in use")
	}
	card.Status = CardSent
	card.SentAt = ptime(c.At)
	card.retireLink("replaced")
	card.LinkHash, card.LinkExpires = b.LinkHash, ptime(b.LinkExpires)
	// A message still queued with the old link would deliver a dead link.
	if m, ok := s.Outbox.Get(card.MessageID); ok && m.Status == MessageQueued {
		m.Status, m.Body, m.LastError = MessageFailed, Redacted, "replaced by a newer activation message"
		s.Outbox.Put(m.ID, m)
		ch.put("outbox", m.ID)
	}
	card.MessageID = b.Message.ID
	s.Accounts.Put(acc.ID, acc)
	ch.put("accounts", acc.ID)
	s.putCard(card, ch)
	s.queueMessage(c, b.Message, card.ID, ch, card.AccountID)
	return card, nil
}

func (s *State) applyActivateCard(c command.Command, b *command.ActivateCard, ch *changes) (any, *Rejection) {
	id, ok := s.cardByLink.Get(b.LinkHash)
	if !ok {
		if old, ok := s.cardByOldLink.Get(b.LinkHash); ok {
			switch s.Cards.At(old).OldLinkWhy {
			case "used":
				return nil, reject(Conflict, "link_used", "", "this activation link was already used; a link works once")
			case "expired":
				return nil, reject(Conflict, "link_expired", "", "this activation link has expired; ask for a new one")
			}
			return nil, reject(Conflict, "link_replaced", "", "a newer activation link was sent for this card; use the latest message")
		}
		return nil, reject(NotFound, "link_not_found", "", "this activation link is not valid; ask for a new link")
	}
	card := s.Cards.At(id)
	if card.Status != CardSent {
		return nil, reject(Conflict, "link_used", "", "this activation link was already used")
	}
	// On the state clock, not the command's time: a node whose clock runs
	// behind must not revive an expired link.
	if card.LinkExpires == nil || !s.Clock.Before(*card.LinkExpires) {
		return nil, reject(Conflict, "link_expired", "", "this activation link has expired; ask for a new one")
	}
	if _, err := parseDeviceKey(b.DeviceKey); err != nil {
		return nil, reject(Invalid, "invalid_value", "public_key", "the phone's key is not a P-256 public key: %v", err)
	}
	acc := s.Accounts.At(card.AccountID)
	acc.Credits = acc.Credits.debit(card.Credits)
	s.Accounts.Put(acc.ID, acc)
	ch.put("accounts", acc.ID)
	card.Status = CardActivated
	card.ActivatedAt = ptime(c.At)
	card.Device = &Device{PublicKey: slices.Clone(b.DeviceKey), BoundAt: c.At.UTC()}
	card.retireLink("used") // single use
	s.putCard(card, ch)
	return card, nil
}

func parseDeviceKey(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve.Params().Name != "P-256" {
		return nil, errorf("not an ECDSA P-256 key")
	}
	return ek, nil
}

// VerifyDevice checks a signature by the card's bound phone key over msg.
func VerifyDevice(c Card, msg, sig []byte) bool {
	if c.Device == nil {
		return false
	}
	k, err := parseDeviceKey(c.Device.PublicKey)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(k, sum[:], sig)
}

// applyExpireLinks expires links on the state clock (leader time), the clock
// activation is judged on, so a link is expired exactly when it no longer
// activates, whatever the clock of the node that issued the command.
func (s *State) applyExpireLinks(ch *changes) (any, *Rejection) {
	n := 0
	for _, id := range s.sentCardIDs() {
		card := s.Cards.At(id)
		if card.LinkExpires == nil || s.Clock.Before(*card.LinkExpires) {
			continue
		}
		acc := s.Accounts.At(card.AccountID)
		acc.Credits = acc.Credits.release(card.Credits)
		s.Accounts.Put(acc.ID, acc)
		ch.put("accounts", acc.ID)
		card.Status, card.Credits = CardExpired, 0
		card.retireLink("expired")
		s.putCard(card, ch)
		n++
	}
	return map[string]int{"expired": n}, nil
}

func (s *State) applyRevokeCard(c command.Command, b *command.RevokeCard, ch *changes) (any, *Rejection) {
	card, rej := s.card(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	if r := RevokeRefusal(card); r != nil {
		return nil, r
	}
	if card.Status == CardPendingRevoke {
		return card, nil // revoking twice is the same revoke
	}
	card.Status = CardPendingRevoke
	card.RevokedAt = ptime(c.At)
	s.putCard(card, ch)
	return card, nil
}

// RevokeRefusal says why card cannot be revoked, or nil (revoking a
// pending revoke again is allowed: it is the same revoke). The API checks
// it on the local replica before queuing a revoke offline.
func RevokeRefusal(card Card) *Rejection {
	if card.Status != CardActivated && card.Status != CardPendingRevoke {
		return reject(Conflict, "invalid_status", "", "only an activated card can be revoked; this one is %s", card.Status)
	}
	return nil
}

// LostRefusal says why card cannot be marked lost, or nil.
func LostRefusal(card Card) *Rejection {
	if card.Kind == KindConfig {
		return reject(Conflict, "invalid_kind", "", "a configuration card is deleted, not marked lost")
	}
	if card.Status != CardPendingRevoke && card.Status != CardRevoked {
		return reject(Conflict, "invalid_status", "", "only a revoked or pending-revoke card can be marked lost; this one is %s", card.Status)
	}
	return nil
}

func (s *State) applyConfirmRevoke(c command.Command, b *command.ConfirmRevoke, ch *changes) (any, *Rejection) {
	card, rej := s.card(b.CardID, "")
	if rej != nil {
		return nil, rej
	}
	if !VerifyDevice(card, command.DeletionReceiptMessage(card.ID), b.Signature) {
		return nil, reject(Forbidden, "bad_signature", "", "the deletion receipt is not signed by the phone this card is bound to")
	}
	if card.Status == CardRevoked || card.Status == CardLost {
		return card, nil // the phone confirms a deletion already settled: nothing more to do
	}
	if card.Status != CardPendingRevoke {
		return nil, reject(Conflict, "invalid_status", "", "card %s is %s, not pending revoke", card.ID, card.Status)
	}
	acc := s.Accounts.At(card.AccountID)
	acc.Credits = acc.Credits.refund(card.Credits)
	s.Accounts.Put(acc.ID, acc)
	ch.put("accounts", acc.ID)
	card.Status, card.Credits = CardRevoked, 0
	s.putCard(card, ch)
	return card, nil
}

func (s *State) applyMarkLost(c command.Command, b *command.MarkLost, ch *changes) (any, *Rejection) {
	card, rej := s.card(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	if r := LostRefusal(card); r != nil {
		return nil, r
	}
	if card.Status == CardPendingRevoke {
		// The phone will never confirm: the debited credits are lost.
		acc := s.Accounts.At(card.AccountID)
		acc.Credits = acc.Credits.lose(card.Credits)
		s.Accounts.Put(acc.ID, acc)
		ch.put("accounts", acc.ID)
	}
	card.Status, card.Credits = CardLost, 0
	s.putCard(card, ch)
	return card, nil
}

func (s *State) applyDeleteCard(c command.Command, b *command.DeleteCard, ch *changes) (any, *Rejection) {
	card, rej := s.card(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	acc := s.Accounts.At(card.AccountID)
	switch {
	case card.Status == CardSent:
		acc.Credits = acc.Credits.release(card.Credits)
	case card.holdsCredits():
		acc.Credits = acc.Credits.lose(card.Credits)
	}
	s.Accounts.Put(acc.ID, acc)
	ch.put("accounts", acc.ID)
	s.dropCard(card, ch)
	return nil, nil
}

// field locks (seed 003, "Modifying a virtual user card"): which fields may
// change in which status. Expired behaves as sent; lost as revoked.
var cardFieldOpen = map[string]map[string]bool{
	"first_name":    {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true, CardLost: true},
	"last_name":     {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true, CardLost: true},
	"phone":         {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true, CardLost: true},
	"fields":        {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true, CardLost: true},
	"reader_config": {CardCreated: true},
	"private_id":    {CardCreated: true},
	"email":         {CardCreated: true},
	// Access rules are not in the seed's table; they may change while the card lives.
	"valid_from":    {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true},
	"valid_until":   {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true},
	"max_uses":      {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true},
	"access_levels": {CardCreated: true, CardSent: true, CardActivated: true, CardPendingRevoke: true, CardRevoked: true, CardExpired: true},
}

// CardFieldOpen reports whether field may change in status.
func CardFieldOpen(field, status string) bool { return cardFieldOpen[field][status] }

func locked(field, status string) *Rejection {
	return reject(Conflict, "field_locked", field, "%s cannot be changed on a card that is %s", field, status)
}

func (s *State) applyUpdateCard(c command.Command, b *command.UpdateCard, ch *changes) (any, *Rejection) {
	card, rej := s.card(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	if card.Kind == KindConfig {
		return nil, reject(Conflict, "invalid_kind", "", "a configuration card has nothing to edit; edit its configurator")
	}
	next := card
	next.AccessLevels = slices.Clone(card.AccessLevels)
	next.Fields = maps.Clone(card.Fields)
	set := func(field string, apply func()) *Rejection {
		if !CardFieldOpen(field, card.Status) {
			return locked(field, card.Status)
		}
		apply()
		return nil
	}
	type edit struct {
		given bool
		field string
		apply func()
	}
	edits := []edit{
		{b.FirstName != nil, "first_name", func() { next.FirstName = strings.TrimSpace(*b.FirstName) }},
		{b.LastName != nil, "last_name", func() { next.LastName = strings.TrimSpace(*b.LastName) }},
		{b.Phone != nil, "phone", func() { next.Phone = strings.TrimSpace(*b.Phone) }},
		{b.Fields != nil, "fields", func() { next.Fields = maps.Clone(*b.Fields) }},
		{b.Email != nil, "email", func() { next.Email = normEmail(*b.Email) }},
		{b.ValidFrom != nil, "valid_from", func() { next.ValidFrom = ptime(*b.ValidFrom) }},
		{b.ValidUntil != nil, "valid_until", func() { next.ValidUntil = ptime(*b.ValidUntil) }},
		{b.MaxUses != nil, "max_uses", func() { next.MaxUses = *b.MaxUses }},
		{b.AccessLevels != nil, "access_levels", func() { next.AccessLevels = slices.Clone(*b.AccessLevels) }},
		{b.PrivateID != nil, "private_id", func() { next.PrivateID = *b.PrivateID }},
		{b.ReaderConfig != nil || b.Kind != nil, "reader_config", func() {
			if b.ReaderConfig != nil {
				next.ReaderConfig = *b.ReaderConfig
			}
			if b.Kind != nil {
				next.Kind = *b.Kind
			}
		}},
	}
	for _, e := range edits {
		if e.given {
			if r := set(e.field, e.apply); r != nil {
				return nil, r
			}
		}
	}
	// Configuration changes (rule 1 of the seed's table): device-ID to
	// private-ID, or private-ID to another private-ID; never back to device-ID.
	if next.Kind != card.Kind || next.ReaderConfig != card.ReaderConfig || next.PrivateID != card.PrivateID {
		if card.Kind == KindPrivateID && next.Kind == KindDeviceID {
			return nil, reject(Conflict, "field_locked", "kind", "a private id card cannot become a device id card; create a new card instead")
		}
		if next.Kind != KindPrivateID {
			return nil, reject(Invalid, "invalid_value", "kind", "kind must stay private_id or change from device_id to private_id")
		}
		if _, ok := s.readerConfigByName(card.AccountID, next.ReaderConfig); !ok {
			return nil, reject(NotFound, "reader_config_not_found", "reader_config", "there is no reader configuration named %q in this account", next.ReaderConfig)
		}
		if r := validPrivateID(next.PrivateID); r != nil {
			return nil, r
		}
		// The card's own entry must not count against itself.
		s.unindexCard(card)
		r := s.checkPrivateID(s.Sites.At(card.SiteID), next.ReaderConfig, next.PrivateID)
		if r == nil && s.holderConfigs.At(holderConfigKey(card.CardholderID, next.ReaderConfig)) > 0 {
			r = reject(Conflict, "duplicate_card", "reader_config", "this cardholder already holds a card of configuration %q", next.ReaderConfig)
		}
		s.indexCard(card)
		if r != nil {
			return nil, r
		}
	}
	if next.FirstName == "" || next.LastName == "" {
		return nil, reject(Invalid, "required", "first_name", "first and last name are required")
	}
	if r := validateWindow(next.ValidFrom, next.ValidUntil, next.MaxUses); r != nil {
		return nil, r
	}
	if r := s.checkAccessLevels(card.SiteID, next.AccessLevels); r != nil {
		return nil, r
	}
	s.putCard(next, ch)
	return next, nil
}

func validateWindow(from, until *time.Time, maxUses int64) *Rejection {
	if from != nil && until != nil && !until.After(*from) {
		return reject(Invalid, "invalid_value", "valid_until", "valid_until must be after valid_from")
	}
	if maxUses < 0 {
		return reject(Invalid, "invalid_value", "max_uses", "max_uses cannot be negative (0 means no limit)")
	}
	return nil
}

// sentCardIDs lists the cards with a live link (only sent cards have one),
// sorted so that every node expires them in the same order.
func (s *State) sentCardIDs() []string {
	ids := make([]string, 0, s.cardByLink.Len())
	for _, id := range s.cardByLink.From("") {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// LinksToExpire reports whether some sent card's link has expired at now,
// so the leader issues ExpireLinks only when it has work.
func (s *State) LinksToExpire(now time.Time) bool {
	for _, id := range s.cardByLink.From("") {
		if c := s.Cards.At(id); c.LinkExpires != nil && !now.Before(*c.LinkExpires) {
			return true
		}
	}
	return false
}
