package state

import (
	"strings"
	"time"

	"lintel/consensus/command"
)

// Account kinds (SPEC 4.2).
const (
	AccountReseller    = "reseller"
	AccountEndCustomer = "end_customer"
)

// Areas a profile grants rights on (SPEC 4.2, seed 003 "View rights").
var Areas = []string{
	"account", "operators", "profiles", "accounts", "sites", "reader_configs", "cardholders",
	"cards", "configurators", "readers", "events", "credits", "cluster",
}

// Rights a profile may grant per area.
var Rights = []string{"view", "create", "edit", "delete"}

// AdministratorProfile is the name of the profile with every right.
const AdministratorProfile = "Administrator"

// Account is a reseller or end-customer account. ParentID is the reseller
// that created it (empty for the bootstrap account).
type Account struct {
	ID        string    `json:"id"`
	ParentID  string    `json:"parent_id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Status    string    `json:"status"`
	Email     string    `json:"email"`
	FirstName string    `json:"first_name"`
	LastName  string    `json:"last_name"`
	Phone     string    `json:"phone"`
	CreatedAt time.Time `json:"created_at"`
	Credits   Ledger    `json:"credits"`
}

// Profile is a named set of rights.
type Profile struct {
	ID                 string              `json:"id"`
	AccountID          string              `json:"account_id"`
	Name               string              `json:"name"`
	Rights             map[string][]string `json:"rights"`
	CanOrderCredits    bool                `json:"can_order_credits"`
	CanTransferCredits bool                `json:"can_transfer_credits"`
}

// Allows reports whether the profile grants right on area.
func (p Profile) Allows(area, right string) bool {
	for _, r := range p.Rights[area] {
		if r == right {
			return true
		}
	}
	return false
}

// Operator statuses (seed 003 "Users").
const (
	OperatorCreated   = "created"
	OperatorActivated = "activated"
	OperatorDisabled  = "disabled"
)

// Operator is a person who logs in to the console or the API.
type Operator struct {
	ID           string    `json:"id"`
	AccountID    string    `json:"account_id"`
	FirstName    string    `json:"first_name"`
	LastName     string    `json:"last_name"`
	Email        string    `json:"email"`
	Phone        string    `json:"phone"`
	ProfileID    string    `json:"profile_id"`
	SiteIDs      []string  `json:"site_ids"`
	Status       string    `json:"status"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func (s *State) applyInit(c command.Command, b *command.Init, ch *changes) (any, *Rejection) {
	if s.Initialized {
		return nil, reject(Conflict, "already_initialized", "", "the cluster is already initialized")
	}
	all := map[string][]string{}
	for _, a := range Areas {
		all[a] = append([]string(nil), Rights...)
	}
	at := c.At.UTC()
	s.Accounts.Put(b.AccountID, Account{ID: b.AccountID, Name: b.AccountName, Kind: b.AccountKind, Status: OperatorActivated, Email: normEmail(b.Email), CreatedAt: at})
	s.Profiles.Put(b.ProfileID, Profile{
		ID: b.ProfileID, AccountID: b.AccountID, Name: AdministratorProfile, Rights: all,
		CanOrderCredits: true, CanTransferCredits: true,
	})
	s.Operators.Put(b.OperatorID, Operator{
		ID: b.OperatorID, AccountID: b.AccountID, FirstName: "Administrator", Email: normEmail(b.Email),
		ProfileID: b.ProfileID, Status: OperatorActivated, PasswordHash: b.PasswordHash, CreatedAt: at,
	})
	s.operatorByEmail.Put(normEmail(b.Email), b.OperatorID)
	s.ClusterSecret = append([]byte(nil), b.ClusterSecret...)
	if b.TLS != nil {
		s.TLS = *b.TLS
		ch.put("tls", "")
	}
	if b.Member != nil {
		s.Members.Put(b.Member.NodeID, Member{NodeID: b.Member.NodeID, Instance: b.Member.Instance, Key: b.Member.Key, AddedAt: at})
		ch.put("members", b.Member.NodeID)
	}
	s.Initialized = true
	ch.put("accounts", b.AccountID)
	ch.put("profiles", b.ProfileID)
	ch.put("operators", b.OperatorID)
	return map[string]string{"account_id": b.AccountID, "operator_id": b.OperatorID}, nil
}

// OperatorByEmail finds an operator by email, case-insensitively.
func (s *State) OperatorByEmail(email string) (Operator, bool) {
	id, ok := s.operatorByEmail.Get(normEmail(email))
	if !ok {
		return Operator{}, false
	}
	o, ok := s.Operators.Get(id)
	return o, ok
}
