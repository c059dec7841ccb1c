package state

import (
	"maps"
	"slices"
	"strings"
	"time"

	"lintel/consensus/command"
)

// Operator and account actions per status (seed 003, "Possible actions
// depending on the account status"; the same table for users):
//
//	             Activated  Created  Disabled
//	Modify           ✓         ✓        ✓
//	Disable          ✓         ✗        ✗
//	Delete           ✓         ✓        ✓
//	Reactivate       ✗         ✗        ✓
var statusActions = map[string]map[string]bool{
	"modify":     {OperatorActivated: true, OperatorCreated: true, OperatorDisabled: true},
	"disable":    {OperatorActivated: true},
	"delete":     {OperatorActivated: true, OperatorCreated: true, OperatorDisabled: true},
	"reactivate": {OperatorDisabled: true},
}

// StatusAllows reports whether action is allowed in status (accounts and operators).
func StatusAllows(action, status string) bool { return statusActions[action][status] }

func notAllowed(action, what, status string) *Rejection {
	return reject(Conflict, "invalid_status", "", "a %s that is %s cannot be %s", what, status, map[string]string{
		"disable": "disabled", "reactivate": "re-enabled", "modify": "modified", "delete": "deleted"}[action])
}

// Invitation is a pending operator invitation; only the link's hash is kept.
type Invitation struct {
	OperatorID string    `json:"operator_id"`
	Expires    time.Time `json:"expires"`
}

// Token is an API token, bound to an operator's rights; only its hash is kept.
type Token struct {
	ID         string    `json:"id"`
	OperatorID string    `json:"operator_id"`
	AccountID  string    `json:"account_id"`
	Name       string    `json:"name"`
	TokenHash  string    `json:"token_hash"`
	CreatedAt  time.Time `json:"created_at"`
}

func checkRights(r command.ProfileRights) *Rejection {
	if rej := checkName("name", r.Name); rej != nil {
		return rej
	}
	// In key order: the first bad area names the refusal, which every node
	// must word the same (it is kept in the dedup table).
	for _, area := range slices.Sorted(maps.Keys(r.Rights)) {
		rights := r.Rights[area]
		if !slices.Contains(Areas, area) {
			return reject(Invalid, "invalid_value", "rights", "%q is not an area; the areas are %s", area, strings.Join(Areas, ", "))
		}
		for _, x := range rights {
			if !slices.Contains(Rights, x) {
				return reject(Invalid, "invalid_value", "rights", "%q is not a right; the rights are view, create, edit, delete", x)
			}
		}
	}
	return nil
}

func profileOf(id, accountID string, r command.ProfileRights) Profile {
	rights := map[string][]string{}
	for area, rs := range r.Rights {
		if len(rs) > 0 {
			sorted := slices.Clone(rs)
			slices.Sort(sorted)
			rights[area] = slices.Compact(sorted)
		}
	}
	return Profile{ID: id, AccountID: accountID, Name: strings.TrimSpace(r.Name), Rights: rights,
		CanOrderCredits: r.CanOrderCredits, CanTransferCredits: r.CanTransferCredits}
}

func (s *State) profileNameTaken(accountID, name, except string) bool {
	for _, p := range s.Profiles.All() {
		if p.AccountID == accountID && p.ID != except && strings.EqualFold(p.Name, name) {
			return true
		}
	}
	return false
}

func (s *State) applyCreateProfile(b *command.CreateProfile, ch *changes) (any, *Rejection) {
	if _, ok := s.Accounts.Get(b.AccountID); !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.AccountID)
	}
	if r := checkRights(b.ProfileRights); r != nil {
		return nil, r
	}
	if _, ok := s.Profiles.Get(b.ID); ok || b.ID == "" {
		return nil, reject(Conflict, "duplicate_id", "id", "a profile with id %s already exists", b.ID)
	}
	if s.profileNameTaken(b.AccountID, strings.TrimSpace(b.Name), "") {
		return nil, reject(Conflict, "duplicate_name", "name", "a profile named %q already exists", b.Name)
	}
	p := profileOf(b.ID, b.AccountID, b.ProfileRights)
	s.Profiles.Put(p.ID, p)
	ch.put("profiles", p.ID)
	return p, nil
}

func (s *State) applyUpdateProfile(b *command.UpdateProfile, ch *changes) (any, *Rejection) {
	p, ok := s.Profiles.Get(b.ID)
	if !ok || p.AccountID != b.AccountID {
		return nil, reject(NotFound, "profile_not_found", "", "profile %s does not exist", b.ID)
	}
	if p.Name == AdministratorProfile {
		return nil, reject(Conflict, "profile_locked", "", "the Administrator profile keeps every right; create another profile instead")
	}
	if r := checkRights(b.ProfileRights); r != nil {
		return nil, r
	}
	if s.profileNameTaken(b.AccountID, strings.TrimSpace(b.Name), b.ID) || strings.EqualFold(strings.TrimSpace(b.Name), AdministratorProfile) {
		return nil, reject(Conflict, "duplicate_name", "name", "a profile named %q already exists", b.Name)
	}
	np := profileOf(b.ID, b.AccountID, b.ProfileRights)
	s.Profiles.Put(np.ID, np)
	ch.put("profiles", np.ID)
	return np, nil
}

func (s *State) applyDeleteProfile(b *command.DeleteProfile, ch *changes) (any, *Rejection) {
	p, ok := s.Profiles.Get(b.ID)
	if !ok || p.AccountID != b.AccountID {
		return nil, reject(NotFound, "profile_not_found", "", "profile %s does not exist", b.ID)
	}
	if p.Name == AdministratorProfile {
		return nil, reject(Conflict, "profile_locked", "", "the Administrator profile cannot be deleted")
	}
	for _, o := range s.Operators.All() {
		if o.ProfileID == p.ID {
			return nil, reject(Conflict, "profile_in_use", "", "operator %s %s uses profile %q; give them another profile first", o.FirstName, o.LastName, p.Name)
		}
	}
	s.Profiles.Delete(p.ID)
	ch.del("profiles", p.ID)
	return nil, nil
}

// newOperator makes an operator record, invited or (with a password) activated.
func (s *State) newOperator(c command.Command, b *command.CreateOperator, ch *changes) (Operator, *Rejection) {
	email := normEmail(b.Email)
	if !validEmail(email) {
		return Operator{}, reject(Invalid, "invalid_value", "email", "%q is not an email address", b.Email)
	}
	if _, taken := s.operatorByEmail.Get(email); taken {
		return Operator{}, reject(Conflict, "duplicate_email", "email", "an operator with email %s already exists; an email belongs to one operator", email)
	}
	for _, f := range []struct{ name, v string }{{"first_name", b.FirstName}, {"last_name", b.LastName}} {
		if r := checkName(f.name, f.v); r != nil {
			return Operator{}, r
		}
	}
	p, ok := s.Profiles.Get(b.ProfileID)
	if !ok || p.AccountID != b.AccountID {
		return Operator{}, reject(NotFound, "profile_not_found", "profile_id", "profile %s does not exist in this account", b.ProfileID)
	}
	for _, id := range b.SiteIDs {
		if x, ok := s.Sites.Get(id); !ok || x.AccountID != b.AccountID {
			return Operator{}, reject(NotFound, "site_not_found", "site_ids", "site %s does not exist in this account", id)
		}
	}
	if _, ok := s.Operators.Get(b.ID); ok || b.ID == "" {
		return Operator{}, reject(Conflict, "duplicate_id", "id", "an operator with id %s already exists", b.ID)
	}
	o := Operator{ID: b.ID, AccountID: b.AccountID, FirstName: strings.TrimSpace(b.FirstName), LastName: strings.TrimSpace(b.LastName),
		Email: email, Phone: strings.TrimSpace(b.Phone), ProfileID: b.ProfileID, SiteIDs: slices.Clone(b.SiteIDs),
		Status: OperatorCreated, CreatedAt: c.At.UTC()}
	switch {
	case b.PasswordHash != "":
		o.Status, o.PasswordHash = OperatorActivated, b.PasswordHash
	case b.InviteHash != "" && b.InviteExpires.After(s.Clock): // judged on the state clock, as on acceptance
		s.Invitations.Put(b.InviteHash, Invitation{OperatorID: o.ID, Expires: b.InviteExpires.UTC()})
	default:
		return Operator{}, reject(Invalid, "invalid_command", "", "a new operator needs a password or an invitation")
	}
	return o, nil
}

func (s *State) putOperator(o Operator, ch *changes) {
	s.Operators.Put(o.ID, o)
	s.operatorByEmail.Put(o.Email, o.ID)
	ch.put("operators", o.ID)
}

func (s *State) applyCreateOperator(c command.Command, b *command.CreateOperator, ch *changes) (any, *Rejection) {
	if _, ok := s.Accounts.Get(b.AccountID); !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.AccountID)
	}
	o, rej := s.newOperator(c, b, ch)
	if rej != nil {
		return nil, rej
	}
	s.putOperator(o, ch)
	s.queueMessage(c, b.Invitation, "", ch, o.AccountID)
	return o, nil
}

func (s *State) operator(id, accountID string) (Operator, *Rejection) {
	o, ok := s.Operators.Get(id)
	if !ok || o.AccountID != accountID {
		return Operator{}, reject(NotFound, "operator_not_found", "", "operator %s does not exist", id)
	}
	return o, nil
}

func (s *State) applyUpdateOperator(b *command.UpdateOperator, ch *changes) (any, *Rejection) {
	o, rej := s.operator(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	if !StatusAllows("modify", o.Status) {
		return nil, notAllowed("modify", "operator", o.Status)
	}
	if b.FirstName != nil {
		if r := checkName("first_name", *b.FirstName); r != nil {
			return nil, r
		}
		o.FirstName = strings.TrimSpace(*b.FirstName)
	}
	if b.LastName != nil {
		if r := checkName("last_name", *b.LastName); r != nil {
			return nil, r
		}
		o.LastName = strings.TrimSpace(*b.LastName)
	}
	if b.Phone != nil {
		o.Phone = strings.TrimSpace(*b.Phone)
	}
	if b.ProfileID != nil {
		if p, ok := s.Profiles.Get(*b.ProfileID); !ok || p.AccountID != b.AccountID {
			return nil, reject(NotFound, "profile_not_found", "profile_id", "profile %s does not exist in this account", *b.ProfileID)
		}
		o.ProfileID = *b.ProfileID
	}
	if b.SiteIDs != nil {
		for _, id := range *b.SiteIDs {
			if x, ok := s.Sites.Get(id); !ok || x.AccountID != b.AccountID {
				return nil, reject(NotFound, "site_not_found", "site_ids", "site %s does not exist in this account", id)
			}
		}
		o.SiteIDs = slices.Clone(*b.SiteIDs)
	}
	s.putOperator(o, ch)
	return o, nil
}

func (s *State) applySetOperatorStatus(b *command.SetOperatorStatus, ch *changes) (any, *Rejection) {
	o, rej := s.operator(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	action, next := "disable", OperatorDisabled
	if b.Enable {
		action, next = "reactivate", OperatorActivated
		if o.PasswordHash == "" {
			next = OperatorCreated // never activated: back to waiting for the invitation
		}
	}
	if !StatusAllows(action, o.Status) {
		return nil, notAllowed(action, "operator", o.Status)
	}
	o.Status = next
	s.putOperator(o, ch)
	if !b.Enable {
		s.endSessions(o.ID, ch)
	}
	return o, nil
}

func (s *State) applyDeleteOperator(b *command.DeleteOperator, ch *changes) (any, *Rejection) {
	o, rej := s.operator(b.ID, b.AccountID)
	if rej != nil {
		return nil, rej
	}
	if p := s.Profiles.At(o.ProfileID); p.Name == AdministratorProfile && s.countAdmins(o.AccountID) == 1 {
		return nil, reject(Conflict, "last_administrator", "", "%s is the account's last administrator; give another operator the Administrator profile first", o.Email)
	}
	s.dropOperator(o, ch)
	return nil, nil
}

func (s *State) countAdmins(accountID string) int {
	n := 0
	for _, o := range s.Operators.All() {
		if o.AccountID == accountID && s.Profiles.At(o.ProfileID).Name == AdministratorProfile {
			n++
		}
	}
	return n
}

// dropOperator removes an operator with their sessions, tokens and invitations.
func (s *State) dropOperator(o Operator, ch *changes) {
	s.endSessions(o.ID, ch)
	for id, t := range s.Tokens.All() {
		if t.OperatorID == o.ID {
			s.Tokens.Delete(id)
			s.tokenByHash.Delete(t.TokenHash)
			ch.del("tokens", id)
		}
	}
	for h, inv := range s.Invitations.All() {
		if inv.OperatorID == o.ID {
			s.Invitations.Delete(h)
		}
	}
	s.Operators.Delete(o.ID)
	s.operatorByEmail.Delete(o.Email)
	ch.del("operators", o.ID)
}

func (s *State) endSessions(operatorID string, ch *changes) {
	for h, x := range s.Sessions.All() {
		if x.OperatorID == operatorID {
			s.Sessions.Delete(h)
			ch.del("sessions", x.ID)
		}
	}
}

func (s *State) applyAcceptInvitation(c command.Command, b *command.AcceptInvitation, ch *changes) (any, *Rejection) {
	inv, ok := s.Invitations.Get(b.InviteHash)
	if !ok {
		return nil, reject(NotFound, "invitation_not_found", "", "this invitation link is not valid or was already used")
	}
	// On the state clock: a node whose clock runs behind must not accept an
	// expired invitation.
	if !s.Clock.Before(inv.Expires) {
		return nil, reject(Conflict, "invitation_expired", "", "this invitation has expired; ask an administrator to invite you again")
	}
	o := s.Operators.At(inv.OperatorID)
	if b.PasswordHash == "" {
		return nil, reject(Invalid, "required", "password", "choose a password")
	}
	s.Invitations.Delete(b.InviteHash)
	o.PasswordHash, o.Status = b.PasswordHash, OperatorActivated
	s.putOperator(o, ch)
	// The account's main operator activating activates a new customer account.
	if acc := s.Accounts.At(o.AccountID); acc.Status == OperatorCreated {
		acc.Status = OperatorActivated
		s.Accounts.Put(acc.ID, acc)
		ch.put("accounts", acc.ID)
	}
	return o, nil
}

func (s *State) applyCreateToken(c command.Command, b *command.CreateToken, ch *changes) (any, *Rejection) {
	o, ok := s.Operators.Get(b.OperatorID)
	if !ok || o.Status != OperatorActivated {
		return nil, reject(NotFound, "operator_not_found", "", "operator %s does not exist or is not active", b.OperatorID)
	}
	if r := checkName("name", b.Name); r != nil {
		return nil, r
	}
	if b.TokenHash == "" || b.ID == "" {
		return nil, reject(Invalid, "invalid_command", "", "a token needs an id and a hash")
	}
	if _, taken := s.tokenByHash.Get(b.TokenHash); taken {
		return nil, reject(Conflict, "duplicate_token", "", "token already exists")
	}
	t := Token{ID: b.ID, OperatorID: o.ID, AccountID: o.AccountID, Name: strings.TrimSpace(b.Name), TokenHash: b.TokenHash, CreatedAt: c.At.UTC()}
	s.Tokens.Put(t.ID, t)
	s.tokenByHash.Put(t.TokenHash, t.ID)
	ch.put("tokens", t.ID)
	return t, nil
}

func (s *State) applyDeleteToken(b *command.DeleteToken, ch *changes) (any, *Rejection) {
	t, ok := s.Tokens.Get(b.ID)
	if !ok || t.AccountID != b.AccountID {
		return nil, reject(NotFound, "token_not_found", "", "token %s does not exist", b.ID)
	}
	s.Tokens.Delete(t.ID)
	s.tokenByHash.Delete(t.TokenHash)
	ch.del("tokens", t.ID)
	return nil, nil
}

// TokenByHash finds an API token.
func (s *State) TokenByHash(hash string) (Token, bool) {
	id, ok := s.tokenByHash.Get(hash)
	if !ok {
		return Token{}, false
	}
	t, ok := s.Tokens.Get(id)
	return t, ok
}
