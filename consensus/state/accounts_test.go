package state

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"lintel/consensus/command"
)

// reseller makes the bootstrap account a reseller with credits.
func newReseller(t *testing.T, credits int64) *registry {
	r := newRegistry(t, 0)
	acc := r.s.Accounts.At("acc")
	acc.Kind = AccountReseller
	r.s.Accounts.Put("acc", acc)
	if credits > 0 {
		r.load(credits)
	}
	return r
}

func (r *registry) customer(id string, credits int64) {
	r.t.Helper()
	r.must(&command.CreateAccount{ID: id, ParentID: "acc", Name: "Customer " + id, Kind: AccountEndCustomer, FirstName: "Mike",
		LastName: "White", Email: id + "@example.com", OperatorID: "op-" + id, ProfileID: "prof-" + id,
		InviteHash: "inv-" + id, InviteExpires: r.at.Add(72 * time.Hour), Credits: credits, TransferID: "t-" + id,
		Invitation: command.Message{ID: "msg-" + id, To: id + "@example.com", Subject: "Welcome", Body: "link"}})
}

// Seed 003: "Possible actions depending on the account status".
func TestStatusActionTable(t *testing.T) {
	want := map[string][3]bool{ // activated, created, disabled
		"modify":     {true, true, true},
		"disable":    {true, false, false},
		"delete":     {true, true, true},
		"reactivate": {false, false, true},
	}
	for action, w := range want {
		for i, status := range []string{OperatorActivated, OperatorCreated, OperatorDisabled} {
			if got := StatusAllows(action, status); got != w[i] {
				t.Errorf("%s in %s: %v, want %v", action, status, got, w[i])
			}
		}
	}
}

func TestCustomerAccounts(t *testing.T) {
	r := newReseller(t, 100)
	r.customer("c1", 30)
	c := r.s.Accounts.At("c1")
	if c.Status != OperatorCreated || c.Credits.Balance != 30 || c.Credits.TransfersIn != 30 || r.ledger().TransfersOut != 30 || r.ledger().Balance != 70 {
		t.Fatalf("created: %+v / %+v", c, r.ledger())
	}
	if o := r.s.Operators.At("op-c1"); o.Status != OperatorCreated || r.s.Profiles.At(o.ProfileID).Name != AdministratorProfile {
		t.Fatalf("main operator: %+v", o)
	}
	if m := r.s.Outbox.At("msg-c1"); m.AccountID != "c1" || m.Status != MessageQueued {
		t.Fatalf("invitation message: %+v", m)
	}
	// Created: modify yes, disable no, reactivate no.
	name := "Aix High School"
	r.must(&command.UpdateAccount{ID: "c1", ParentID: "acc", Name: &name})
	r.refuse(&command.SetAccountStatus{ID: "c1", ParentID: "acc"}, "invalid_status")
	r.refuse(&command.SetAccountStatus{ID: "c1", ParentID: "acc", Enable: true}, "invalid_status")
	// The main operator accepts the invitation: both activate.
	r.must(&command.AcceptInvitation{InviteHash: "inv-c1", PasswordHash: "$2a$x"})
	if r.s.Accounts.At("c1").Status != OperatorActivated || r.s.Operators.At("op-c1").Status != OperatorActivated {
		t.Fatal("invitation did not activate")
	}
	r.refuse(&command.AcceptInvitation{InviteHash: "inv-c1", PasswordHash: "$2a$y"}, "invitation_not_found")
	r.must(&command.SetAccountStatus{ID: "c1", ParentID: "acc"})
	r.refuse(&command.SetAccountStatus{ID: "c1", ParentID: "acc"}, "invalid_status")
	r.must(&command.SetAccountStatus{ID: "c1", ParentID: "acc", Enable: true})

	// Transfers: final, only from available credit, only to one's customers.
	r.must(&command.TransferCredits{ID: "t2", From: "acc", To: "c1", Credits: 20, Comment: "PO 258749"})
	r.refuse(&command.TransferCredits{ID: "t3", From: "acc", To: "c1", Credits: 51}, "insufficient_credit")
	r.refuse(&command.TransferCredits{ID: "t4", From: "acc", To: "c1", Credits: 0}, "invalid_value")
	r.refuse(&command.TransferCredits{ID: "t5", From: "c1", To: "acc", Credits: 1}, "account_not_found")
	if r.s.Transfers.Len() != 2 || r.s.Transfers.Index(1).Comment != "PO 258749" {
		t.Fatalf("transfers: %+v", r.s.Transfers)
	}
	// An end customer cannot create accounts.
	r.refuse(&command.CreateAccount{ID: "x", ParentID: "c1", Name: "X", Kind: AccountEndCustomer, Email: "x@example.com",
		OperatorID: "ox", ProfileID: "px", InviteHash: "ix", InviteExpires: r.at.Add(time.Hour)}, "not_a_reseller")
	// A duplicate operator email refuses the whole account and leaves nothing.
	r.refuse(&command.CreateAccount{ID: "c2", ParentID: "acc", Name: "Dup", Kind: AccountEndCustomer, Email: "c1@example.com",
		OperatorID: "op-c2", ProfileID: "prof-c2", InviteHash: "inv-c2", InviteExpires: r.at.Add(time.Hour)}, "duplicate_email")
	if _, ok := r.s.Accounts.Get("c2"); ok {
		t.Fatal("refused account left behind")
	}
	if _, ok := r.s.Profiles.Get("prof-c2"); ok {
		t.Fatal("refused account's profile left behind")
	}

	// Deleting an account loses its credits; the cluster sum still holds (checked by apply).
	r.must(&command.DeleteAccount{ID: "c1", ParentID: "acc"})
	if r.s.LostWithAccounts != 50 {
		t.Fatalf("lost with the account: %d", r.s.LostWithAccounts)
	}
	if _, ok := r.s.OperatorByEmail("c1@example.com"); ok {
		t.Fatal("deleted account's operator still logs in")
	}
}

func TestOperatorsProfilesTokens(t *testing.T) {
	r := newRegistry(t, 0)
	r.must(&command.CreateProfile{ID: "sales", AccountID: "acc", ProfileRights: command.ProfileRights{Name: "Sales team",
		Rights: map[string][]string{"cards": {"view", "create"}, "sites": {"view"}}}})
	r.refuse(&command.CreateProfile{ID: "bad", AccountID: "acc", ProfileRights: command.ProfileRights{Name: "Bad",
		Rights: map[string][]string{"doors": {"view"}}}}, "invalid_value")
	r.refuse(&command.CreateProfile{ID: "bad2", AccountID: "acc", ProfileRights: command.ProfileRights{Name: "Bad",
		Rights: map[string][]string{"cards": {"fly"}}}}, "invalid_value")
	r.refuse(&command.CreateProfile{ID: "dup", AccountID: "acc", ProfileRights: command.ProfileRights{Name: "sales TEAM"}}, "duplicate_name")
	if p := r.s.Profiles.At("sales"); !p.Allows("cards", "create") || p.Allows("cards", "delete") {
		t.Fatalf("profile rights: %+v", p)
	}
	r.refuse(&command.UpdateProfile{ID: "prof", AccountID: "acc", ProfileRights: command.ProfileRights{Name: "Less"}}, "profile_locked")

	r.must(&command.CreateOperator{ID: "james", AccountID: "acc", FirstName: "James", LastName: "Daniel", Email: "James@Stid.com",
		ProfileID: "sales", SiteIDs: []string{"site"}, InviteHash: "inv-james", InviteExpires: r.at.Add(time.Hour)})
	r.refuse(&command.CreateOperator{ID: "j2", AccountID: "acc", FirstName: "J", LastName: "D", Email: "james@stid.com",
		ProfileID: "sales", InviteHash: "x", InviteExpires: r.at.Add(time.Hour)}, "duplicate_email")
	r.refuse(&command.CreateOperator{ID: "j3", AccountID: "acc", FirstName: "J", LastName: "D", Email: "j3@stid.com",
		ProfileID: "sales", SiteIDs: []string{"nowhere"}, InviteHash: "y", InviteExpires: r.at.Add(time.Hour)}, "site_not_found")
	// Created: cannot be disabled; deleting the profile in use is refused.
	r.refuse(&command.SetOperatorStatus{ID: "james", AccountID: "acc"}, "invalid_status")
	r.refuse(&command.DeleteProfile{ID: "sales", AccountID: "acc"}, "profile_in_use")
	// The invitation expires.
	r.at = r.at.Add(2 * time.Hour)
	r.refuse(&command.AcceptInvitation{InviteHash: "inv-james", PasswordHash: "h"}, "invitation_expired")
	// An administrator gives a password: activated at once.
	r.must(&command.CreateOperator{ID: "claudia", AccountID: "acc", FirstName: "Claudia", LastName: "White", Email: "claudia@stid.com",
		ProfileID: "sales", PasswordHash: "$2a$h"})
	if r.s.Operators.At("claudia").Status != OperatorActivated {
		t.Fatal("operator with a password not activated")
	}
	r.must(&command.CreateSession{SessionID: "s1", TokenHash: "sess", OperatorID: "claudia", ExpiresAt: r.at.Add(time.Hour)})
	r.must(&command.CreateToken{ID: "tok", OperatorID: "claudia", Name: "script", TokenHash: "tokhash"})
	if tk, ok := r.s.TokenByHash("tokhash"); !ok || tk.AccountID != "acc" {
		t.Fatal("token not found by hash")
	}
	// Disabling ends her sessions; re-enabling works; the email cannot change (no field for it).
	r.must(&command.SetOperatorStatus{ID: "claudia", AccountID: "acc"})
	if _, ok := r.s.Sessions.Get("sess"); ok {
		t.Fatal("disabled operator kept her session")
	}
	r.refuse(&command.CreateSession{SessionID: "s2", TokenHash: "sess2", OperatorID: "claudia", ExpiresAt: r.at.Add(time.Hour)}, "operator_not_active")
	r.must(&command.SetOperatorStatus{ID: "claudia", AccountID: "acc", Enable: true})
	// Deleting removes her tokens; the last administrator stays.
	r.must(&command.DeleteOperator{ID: "claudia", AccountID: "acc"})
	if _, ok := r.s.TokenByHash("tokhash"); ok {
		t.Fatal("deleted operator's token still works")
	}
	r.refuse(&command.DeleteOperator{ID: "op", AccountID: "acc"}, "last_administrator")
}

func TestHistoryRecordsWrites(t *testing.T) {
	r := newReseller(t, 10)
	r.customer("c9", 5)
	r.refuse(&command.TransferCredits{ID: "tx", From: "acc", To: "c9", Credits: 1000}, "insufficient_credit")
	var actions []string
	for h := range r.s.History.All() {
		if h.AccountID == "acc" {
			actions = append(actions, h.Area+": "+h.Action)
		}
	}
	want := []string{
		"Credits: Credit issuer trusted : " + r.issuer.KeyID(),
		"Customer Sites: New site created : London",
		"Reader Configurations: Reader configuration imported : London",
		"Reader Configurations: Reader configuration imported : Paris",
		"Credits: 10 Credits loaded from voucher v1",
		"Customer Accounts: New account created : Customer c9",
	}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Fatalf("history:\n%q\nwant\n%q", actions, want)
	}
}

// A refusal's words are kept in the dedup table, so every node must word it
// the same: with several bad areas, the first in name order is named.
func TestProfileRefusalIsDeterministic(t *testing.T) {
	for i := range 30 {
		r := newReseller(t, 10)
		rights := map[string][]string{"zulu": {"view"}, "alpha": {"view"}, "mike": {"view"}}
		res := r.apply(&command.CreateProfile{ID: fmt.Sprint("p", i), AccountID: "acc", ProfileRights: command.ProfileRights{Name: "Bad", Rights: rights}})
		if res.Err == nil || !strings.Contains(res.Err.Message, `"alpha"`) {
			t.Fatalf("run %d: %+v, want the refusal to name \"alpha\"", i, res.Err)
		}
	}
}
