package state

import (
	"maps"
	"slices"
	"strings"
	"time"

	"lintel/consensus/command"
)

// Cardholder is a person (or a visitor, with a validity window) who holds
// cards: several, one per reader configuration (SPEC 4.4, seed 001).
type Cardholder struct {
	ID         string            `json:"id"`
	AccountID  string            `json:"account_id"`
	FirstName  string            `json:"first_name"`
	LastName   string            `json:"last_name"`
	Email      string            `json:"email"`
	Phone      string            `json:"phone"`
	Fields     map[string]string `json:"fields"`
	Visitor    bool              `json:"visitor"`
	ValidFrom  *time.Time        `json:"valid_from"`
	ValidUntil *time.Time        `json:"valid_until"`
	CreatedAt  time.Time         `json:"created_at"`
}

func validateCardholder(b *command.CreateCardholder) *Rejection {
	b.FirstName, b.LastName = strings.TrimSpace(b.FirstName), strings.TrimSpace(b.LastName)
	b.Email, b.Phone = normEmail(b.Email), strings.TrimSpace(b.Phone)
	if b.ID == "" {
		return reject(Invalid, "invalid_command", "id", "a cardholder needs an id")
	}
	if r := checkName("first_name", b.FirstName); r != nil {
		return r
	}
	if r := checkName("last_name", b.LastName); r != nil {
		return r
	}
	if b.Email != "" && !validEmail(b.Email) {
		return reject(Invalid, "invalid_value", "email", "%q is not an email address (a phone can receive mail as digits@carrier-domain)", b.Email)
	}
	if b.Visitor && (b.ValidFrom == nil || b.ValidUntil == nil) {
		return reject(Invalid, "required", "valid_until", "a visitor needs valid_from and valid_until")
	}
	if r := validateWindow(b.ValidFrom, b.ValidUntil, 0); r != nil {
		return r
	}
	if len(b.Fields) > 20 {
		return reject(Invalid, "too_many", "fields", "at most 20 extra fields")
	}
	return nil
}

// validEmail accepts what a mail relay would: one @, something on each side,
// a dot in the domain; digits@carrier-domain (email-to-SMS) is an address too.
func validEmail(e string) bool {
	at := strings.IndexByte(e, '@')
	return at > 0 && at == strings.LastIndexByte(e, '@') && strings.Contains(e[at+1:], ".") &&
		len(e) <= 254 && !strings.ContainsAny(e, " \t\r\n<>,;\"")
}

func newCardholder(c command.Command, b *command.CreateCardholder) Cardholder {
	return Cardholder{
		ID: b.ID, AccountID: b.AccountID, FirstName: b.FirstName, LastName: b.LastName, Email: b.Email,
		Phone: b.Phone, Fields: maps.Clone(b.Fields), Visitor: b.Visitor, ValidFrom: b.ValidFrom,
		ValidUntil: b.ValidUntil, CreatedAt: c.At.UTC(),
	}
}

func (s *State) applyCreateCardholder(c command.Command, b *command.CreateCardholder, ch *changes) (any, *Rejection) {
	if _, ok := s.Accounts.Get(b.AccountID); !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.AccountID)
	}
	if r := validateCardholder(b); r != nil {
		return nil, r
	}
	if _, ok := s.Cardholders.Get(b.ID); ok {
		return nil, reject(Conflict, "duplicate_id", "id", "a cardholder with id %s already exists", b.ID)
	}
	h := newCardholder(c, b)
	s.Cardholders.Put(h.ID, h)
	ch.put("cardholders", h.ID)
	return h, nil
}

func (s *State) applyUpdateCardholder(b *command.UpdateCardholder, ch *changes) (any, *Rejection) {
	h, ok := s.Cardholders.Get(b.ID)
	if !ok || h.AccountID != b.AccountID {
		return nil, reject(NotFound, "cardholder_not_found", "", "cardholder %s does not exist", b.ID)
	}
	next := command.CreateCardholder{ID: h.ID, AccountID: h.AccountID, FirstName: h.FirstName, LastName: h.LastName, Email: h.Email,
		Phone: h.Phone, Fields: h.Fields, Visitor: h.Visitor, ValidFrom: h.ValidFrom, ValidUntil: h.ValidUntil}
	if b.FirstName != nil {
		next.FirstName = *b.FirstName
	}
	if b.LastName != nil {
		next.LastName = *b.LastName
	}
	if b.Email != nil {
		next.Email = *b.Email
	}
	if b.Phone != nil {
		next.Phone = *b.Phone
	}
	if b.Fields != nil {
		next.Fields = *b.Fields
	}
	if b.ValidFrom != nil {
		next.ValidFrom = ptime(*b.ValidFrom)
	}
	if b.ValidUntil != nil {
		next.ValidUntil = ptime(*b.ValidUntil)
	}
	if r := validateCardholder(&next); r != nil {
		return nil, r
	}
	nh := h
	nh.FirstName, nh.LastName, nh.Email, nh.Phone = next.FirstName, next.LastName, next.Email, next.Phone
	nh.Fields, nh.ValidFrom, nh.ValidUntil = maps.Clone(next.Fields), next.ValidFrom, next.ValidUntil
	s.Cardholders.Put(nh.ID, nh)
	ch.put("cardholders", nh.ID)
	return nh, nil
}

// applyDeleteCardholder deletes a person and their cards by the card rules:
// a sent card's reservation is released, an activated card's credits lost.
func (s *State) applyDeleteCardholder(c command.Command, b *command.DeleteCardholder, ch *changes) (any, *Rejection) {
	h, ok := s.Cardholders.Get(b.ID)
	if !ok || h.AccountID != b.AccountID {
		return nil, reject(NotFound, "cardholder_not_found", "", "cardholder %s does not exist", b.ID)
	}
	var ids []string
	for id, card := range s.Cards.All() {
		if card.CardholderID == h.ID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, rej := s.applyDeleteCard(c, &command.DeleteCard{ID: id, AccountID: b.AccountID}, ch); rej != nil {
			return nil, rej
		}
	}
	s.Cardholders.Delete(h.ID)
	ch.del("cardholders", h.ID)
	return map[string]int{"cards_deleted": len(ids)}, nil
}
