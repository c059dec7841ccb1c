package state

import (
	"strings"
	"time"

	"lintel/consensus/command"
)

// Transfer is a credit transfer from a reseller to its customer: final.
type Transfer struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Credits int64     `json:"credits"`
	Comment string    `json:"comment"`
	By      string    `json:"by"` // operator id
}

// customer returns a customer account of the reseller, or a rejection.
func (s *State) customer(id, parentID string) (Account, *Rejection) {
	a, ok := s.Accounts.Get(id)
	if !ok || a.ParentID != parentID || parentID == "" {
		return Account{}, reject(NotFound, "account_not_found", "", "account %s is not one of your customer accounts", id)
	}
	return a, nil
}

func (s *State) applyCreateAccount(c command.Command, b *command.CreateAccount, ch *changes) (any, *Rejection) {
	parent, ok := s.Accounts.Get(b.ParentID)
	if !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.ParentID)
	}
	if parent.Kind != AccountReseller {
		return nil, reject(Forbidden, "not_a_reseller", "", "only a reseller account creates customer accounts")
	}
	if b.Kind != AccountReseller && b.Kind != AccountEndCustomer {
		return nil, reject(Invalid, "invalid_value", "kind", "kind must be reseller or end_customer")
	}
	if r := checkName("name", b.Name); r != nil {
		return nil, r
	}
	if _, ok := s.Accounts.Get(b.ID); ok || b.ID == "" {
		return nil, reject(Conflict, "duplicate_id", "id", "an account with id %s already exists", b.ID)
	}
	if b.Credits < 0 || b.Credits > parent.Credits.Available() {
		return nil, reject(Conflict, "insufficient_credit", "credits", "you can transfer at most the %d credits available", parent.Credits.Available())
	}
	acc := Account{ID: b.ID, ParentID: b.ParentID, Name: strings.TrimSpace(b.Name), Kind: b.Kind, Status: OperatorCreated,
		Email: normEmail(b.Email), FirstName: strings.TrimSpace(b.FirstName), LastName: strings.TrimSpace(b.LastName),
		Phone: strings.TrimSpace(b.Phone), CreatedAt: c.At.UTC()}
	// The account's Administrator profile and main operator (invited).
	all := map[string][]string{}
	for _, a := range Areas {
		all[a] = Rights
	}
	s.Accounts.Put(acc.ID, acc) // the operator checks below need it (a refusal discards the whole command)
	prof := profileOf(b.ProfileID, acc.ID, command.ProfileRights{Name: AdministratorProfile, Rights: all, CanOrderCredits: true, CanTransferCredits: b.Kind == AccountReseller})
	s.Profiles.Put(prof.ID, prof)
	o, rej := s.newOperator(c, &command.CreateOperator{ID: b.OperatorID, AccountID: acc.ID, FirstName: b.FirstName, LastName: b.LastName,
		Email: b.Email, Phone: b.Phone, ProfileID: prof.ID, InviteHash: b.InviteHash, InviteExpires: b.InviteExpires}, ch)
	if rej != nil {
		return nil, rej
	}
	s.putOperator(o, ch)
	ch.put("accounts", acc.ID)
	ch.put("profiles", prof.ID)
	s.queueMessage(c, b.Invitation, "", ch, acc.ID)
	if b.Credits > 0 {
		s.transfer(c, b.TransferID, parent, acc, b.Credits, b.Comment, ch)
	}
	return s.Accounts.At(acc.ID), nil
}

func (s *State) transfer(c command.Command, id string, from, to Account, n int64, comment string, ch *changes) Transfer {
	from.Credits.Balance -= n
	from.Credits.TransfersOut += n
	to.Credits.Balance += n
	to.Credits.TransfersIn += n
	to.Credits.LastLoaded = ptime(c.At)
	s.Accounts.Put(from.ID, from)
	s.Accounts.Put(to.ID, to)
	t := Transfer{ID: id, At: c.At.UTC(), From: from.ID, To: to.ID, Credits: n, Comment: strings.TrimSpace(comment), By: c.Actor}
	s.Transfers.Append(t)
	ch.put("accounts", from.ID)
	ch.put("accounts", to.ID)
	ch.put("transfers", id)
	return t
}

func (s *State) applyTransferCredits(c command.Command, b *command.TransferCredits, ch *changes) (any, *Rejection) {
	to, rej := s.customer(b.To, b.From)
	if rej != nil {
		return nil, rej
	}
	from := s.Accounts.At(b.From)
	if from.Kind != AccountReseller {
		return nil, reject(Forbidden, "not_a_reseller", "", "only a reseller transfers credits")
	}
	if b.Credits <= 0 {
		return nil, reject(Invalid, "invalid_value", "credits", "transfer at least 1 credit")
	}
	if b.Credits > from.Credits.Available() {
		return nil, reject(Conflict, "insufficient_credit", "credits", "you can transfer at most the %d credits available", from.Credits.Available())
	}
	if len(b.Comment) > 500 {
		return nil, reject(Invalid, "too_long", "comment", "a comment is at most 500 characters")
	}
	return s.transfer(c, b.ID, from, to, b.Credits, b.Comment, ch), nil
}

func (s *State) applyUpdateAccount(b *command.UpdateAccount, ch *changes) (any, *Rejection) {
	a, rej := s.customer(b.ID, b.ParentID)
	if rej != nil {
		return nil, rej
	}
	if b.Name != nil {
		if r := checkName("name", *b.Name); r != nil {
			return nil, r
		}
		a.Name = strings.TrimSpace(*b.Name)
	}
	if b.FirstName != nil {
		a.FirstName = strings.TrimSpace(*b.FirstName)
	}
	if b.LastName != nil {
		a.LastName = strings.TrimSpace(*b.LastName)
	}
	if b.Phone != nil {
		a.Phone = strings.TrimSpace(*b.Phone)
	}
	if b.AlertThreshold != nil {
		if *b.AlertThreshold < 0 {
			return nil, reject(Invalid, "invalid_value", "alert_threshold", "the alert threshold cannot be negative")
		}
		a.Credits.AlertThreshold = *b.AlertThreshold
	}
	s.Accounts.Put(a.ID, a)
	ch.put("accounts", a.ID)
	return a, nil
}

func (s *State) applySetAccountStatus(b *command.SetAccountStatus, ch *changes) (any, *Rejection) {
	a, rej := s.customer(b.ID, b.ParentID)
	if rej != nil {
		return nil, rej
	}
	action, next := "disable", OperatorDisabled
	if b.Enable {
		action, next = "reactivate", OperatorActivated
	}
	if !StatusAllows(action, a.Status) {
		return nil, notAllowed(action, "customer account", a.Status)
	}
	a.Status = next
	s.Accounts.Put(a.ID, a)
	ch.put("accounts", a.ID)
	if !b.Enable {
		for _, o := range s.Operators.All() {
			if o.AccountID == a.ID {
				s.endSessions(o.ID, ch)
			}
		}
	}
	return a, nil
}

// applyDeleteAccount deletes a customer account with its operators, profiles
// and tokens; its credits are lost (seed 003). Sites must be deleted first.
func (s *State) applyDeleteAccount(b *command.DeleteAccount, ch *changes) (any, *Rejection) {
	a, rej := s.customer(b.ID, b.ParentID)
	if rej != nil {
		return nil, rej
	}
	for _, x := range s.Sites.All() {
		if x.AccountID == a.ID {
			return nil, reject(Conflict, "account_not_empty", "", "account %q still has site %q; delete its sites first", a.Name, x.Name)
		}
	}
	for _, x := range s.Accounts.All() {
		if x.ParentID == a.ID {
			return nil, reject(Conflict, "account_not_empty", "", "account %q still has customer account %q; delete it first", a.Name, x.Name)
		}
	}
	for _, o := range s.Operators.All() {
		if o.AccountID == a.ID {
			s.dropOperator(o, ch)
		}
	}
	for id, p := range s.Profiles.All() {
		if p.AccountID == a.ID {
			s.Profiles.Delete(id)
			ch.del("profiles", id)
		}
	}
	for id, h := range s.Cardholders.All() {
		if h.AccountID == a.ID {
			s.Cardholders.Delete(id)
			ch.del("cardholders", id)
		}
	}
	// What it held is lost with it.
	s.LostWithAccounts += a.Credits.Balance + a.Credits.Lost
	s.Accounts.Delete(a.ID)
	ch.del("accounts", a.ID)
	return nil, nil
}
