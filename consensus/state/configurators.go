package state

import (
	"maps"
	"strings"
	"time"

	"lintel/consensus/command"
)

// KindConfig is a virtual configuration card: sent to a configurator's phone
// to set up readers, free of credits, never a door credential. It shares the
// card lifecycle (send, activation link, revoke, deletion receipt).
const KindConfig = "config"

// Configurator is a person who configures readers (seed 003, "Creating a configurator").
type Configurator struct {
	ID        string            `json:"id"`
	AccountID string            `json:"account_id"`
	SiteID    string            `json:"site_id"`
	FirstName string            `json:"first_name"`
	LastName  string            `json:"last_name"`
	Email     string            `json:"email"`
	Phone     string            `json:"phone"`
	Fields    map[string]string `json:"fields"`
	CreatedAt time.Time         `json:"created_at"`
}

func (s *State) applyCreateConfigurator(c command.Command, b *command.CreateConfigurator, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.SiteID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "site_id", "site %s does not exist", b.SiteID)
	}
	email := normEmail(b.Email)
	for _, f := range []struct{ name, v string }{{"first_name", b.FirstName}, {"last_name", b.LastName}} {
		if r := checkName(f.name, f.v); r != nil {
			return nil, r
		}
	}
	if !validEmail(email) {
		return nil, reject(Invalid, "invalid_value", "email", "%q is not an email address", b.Email)
	}
	if _, ok := s.Configurators.Get(b.ID); ok || b.ID == "" {
		return nil, reject(Conflict, "duplicate_id", "id", "a configurator with id %s already exists", b.ID)
	}
	for _, x := range s.Configurators.All() {
		if x.SiteID == b.SiteID && x.Email == email {
			return nil, reject(Conflict, "duplicate_email", "email", "%s is already a configurator of this site", email)
		}
	}
	cf := Configurator{ID: b.ID, AccountID: b.AccountID, SiteID: b.SiteID, FirstName: strings.TrimSpace(b.FirstName),
		LastName: strings.TrimSpace(b.LastName), Email: email, Phone: strings.TrimSpace(b.Phone), Fields: maps.Clone(b.Fields), CreatedAt: c.At.UTC()}
	s.Configurators.Put(cf.ID, cf)
	ch.put("configurators", cf.ID)
	return cf, nil
}

func (s *State) configurator(id, accountID string) (Configurator, *Rejection) {
	cf, ok := s.Configurators.Get(id)
	if !ok || cf.AccountID != accountID {
		return Configurator{}, reject(NotFound, "configurator_not_found", "", "configurator %s does not exist", id)
	}
	return cf, nil
}

func (s *State) applyUpdateConfigurator(b *command.UpdateConfigurator, ch *changes) (any, *Rejection) {
	cf, rej := s.configurator(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	if b.FirstName != nil {
		if r := checkName("first_name", *b.FirstName); r != nil {
			return nil, r
		}
		cf.FirstName = strings.TrimSpace(*b.FirstName)
	}
	if b.LastName != nil {
		if r := checkName("last_name", *b.LastName); r != nil {
			return nil, r
		}
		cf.LastName = strings.TrimSpace(*b.LastName)
	}
	if b.Phone != nil {
		cf.Phone = strings.TrimSpace(*b.Phone)
	}
	if b.Fields != nil {
		cf.Fields = maps.Clone(*b.Fields)
	}
	s.Configurators.Put(cf.ID, cf)
	ch.put("configurators", cf.ID)
	// The configurator's cards carry the names too.
	for _, c := range s.Cards.All() {
		if c.Kind == KindConfig && c.CardholderID == cf.ID {
			c.FirstName, c.LastName, c.Phone = cf.FirstName, cf.LastName, cf.Phone
			s.putCard(c, ch)
		}
	}
	return cf, nil
}

// applyDeleteConfigurator: "A configurator cannot be deleted if at least one
// configuration is assigned to him" (seed 003).
func (s *State) applyDeleteConfigurator(b *command.DeleteConfigurator, ch *changes) (any, *Rejection) {
	cf, rej := s.configurator(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	if n := s.holderCards(cf.ID); n > 0 {
		return nil, reject(Conflict, "configurator_in_use", "", "%s %s still holds %d configuration cards; delete them first", cf.FirstName, cf.LastName, n)
	}
	s.Configurators.Delete(cf.ID)
	ch.del("configurators", cf.ID)
	return nil, nil
}

func (s *State) holderCards(holderID string) int {
	n := 0
	for _, c := range s.Cards.All() {
		if c.CardholderID == holderID {
			n++
		}
	}
	return n
}

func (s *State) applyCreateConfigCard(c command.Command, b *command.CreateConfigCard, ch *changes) (any, *Rejection) {
	cf, rej := s.configurator(b.ConfiguratorID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	rc, ok := s.readerConfigByName(b.AccountID, b.ReaderConfig)
	if !ok {
		return nil, reject(NotFound, "reader_config_not_found", "reader_config", "there is no reader configuration named %q in this account", b.ReaderConfig)
	}
	if _, ok := s.Cards.Get(b.ID); ok || b.ID == "" {
		return nil, reject(Conflict, "duplicate_id", "id", "a card with id %s already exists", b.ID)
	}
	if s.holderConfigs.At(holderConfigKey(cf.ID, rc.Name)) > 0 {
		return nil, reject(Conflict, "duplicate_card", "reader_config", "%s %s already has configuration %q assigned", cf.FirstName, cf.LastName, rc.Name)
	}
	card := Card{ID: b.ID, SiteID: cf.SiteID, AccountID: b.AccountID, Kind: KindConfig, Status: CardCreated, ReaderConfig: rc.Name,
		CardholderID: cf.ID, FirstName: cf.FirstName, LastName: cf.LastName, Email: cf.Email, Phone: cf.Phone, CreatedAt: c.At.UTC()}
	s.putCard(card, ch)
	return card, nil
}

// Template kinds (seed 003, "Customize the emails sent automatically by the platform").
const (
	TemplateCardActivation   = "card_activation"
	TemplateConfigActivation = "config_activation"
	TemplateInvitation       = "operator_invitation"
)

// TemplateKinds lists the messages an account may word itself.
var TemplateKinds = []string{TemplateCardActivation, TemplateConfigActivation, TemplateInvitation}

// Template is an account's wording of one message; {link} must appear in it.
type Template struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

func (s *State) applySetTemplate(b *command.SetTemplate, ch *changes) (any, *Rejection) {
	acc, ok := s.Accounts.Get(b.AccountID)
	if !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.AccountID)
	}
	known := false
	for _, k := range TemplateKinds {
		known = known || k == b.Kind
	}
	if !known {
		return nil, reject(Invalid, "invalid_value", "kind", "the message kinds are %s", strings.Join(TemplateKinds, ", "))
	}
	key := acc.ID + "\x00" + b.Kind
	if b.Subject == "" && b.Body == "" {
		s.Templates.Delete(key)
		ch.del("templates", key)
		return Template{}, nil
	}
	switch {
	case strings.TrimSpace(b.Subject) == "" || len(b.Subject) > 200 || strings.ContainsAny(b.Subject, "\r\n"):
		return nil, reject(Invalid, "invalid_value", "subject", "the subject is one line of 1 to 200 characters")
	case len(b.Body) > 10000:
		return nil, reject(Invalid, "too_long", "body", "the body is at most 10 000 characters")
	case !strings.Contains(b.Body, "{link}"):
		return nil, reject(Invalid, "invalid_value", "body", "the body must contain {link}: without it the person cannot activate")
	}
	t := Template{Subject: b.Subject, Body: b.Body}
	s.Templates.Put(key, t)
	ch.put("templates", key)
	return t, nil
}

// TemplateOf returns an account's wording of a message kind, if it set one.
func (s *State) TemplateOf(accountID, kind string) (Template, bool) {
	t, ok := s.Templates.Get(accountID + "\x00" + kind)
	return t, ok
}
