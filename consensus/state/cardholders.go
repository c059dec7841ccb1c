package state

import (
	"maps"
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
	if _, ok := s.Accounts[b.AccountID]; !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.AccountID)
	}
	if r := validateCardholder(b); r != nil {
		return nil, r
	}
	if _, ok := s.Cardholders[b.ID]; ok {
		return nil, reject(Conflict, "duplicate_id", "id", "a cardholder with id %s already exists", b.ID)
	}
	h := newCardholder(c, b)
	s.Cardholders[h.ID] = h
	ch.put("cardholders", h.ID)
	return h, nil
}
