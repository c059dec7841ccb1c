package state

import (
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"lintel/consensus/command"
)

// HistoryEntry is one line of the account history (seed 003, "Account
// History": time stamp, page, action, performed by), plus the node.
type HistoryEntry struct {
	Index     uint64    `json:"index"`
	AccountID string    `json:"account_id"`
	At        time.Time `json:"at"`
	Area      string    `json:"area"`
	Action    string    `json:"action"`
	By        string    `json:"by"` // operator id, or "system"
	Node      string    `json:"node"`
}

// Retention of the account history in the replicated state: the newest
// HistoryKeep lines of each account. Once an account has HistoryTrim more,
// its oldest HistoryTrim lines leave the state in one apply, as "archive"
// changes that carry them (Change.Entry); each node keeps them in its local
// archive (node/DESIGN.md), where the history list, search and export still
// find them. So the state and its snapshots hold at most
// HistoryKeep+HistoryTrim lines per account, whatever the number of writes.
const (
	HistoryKeep = 1000
	HistoryTrim = 100
)

// record appends a history line for a command that changed something.
// Logins, logouts and mail delivery are not account actions.
func (s *State) record(index uint64, c command.Command, value any, ch *changes) {
	area, action, account := s.describe(c, value)
	if area == "" {
		return
	}
	s.History.put(HistoryEntry{Index: index, AccountID: account, At: c.At.UTC(), Area: area, Action: action, By: c.Actor, Node: c.Node})
	if s.History.count.At(account) <= HistoryKeep+HistoryTrim {
		return
	}
	var old []HistoryEntry
	for _, e := range s.History.t.Prefix(account + "\x00") {
		old = append(old, e)
		if len(old) == HistoryTrim {
			break
		}
	}
	for i := range old {
		s.History.delete(&old[i])
		ch.list = append(ch.list, Change{Index: index, Table: "history", ID: historyKey(old[i].AccountID, old[i].Index), Op: "archive", Entry: &old[i]})
	}
}

// HistoryTable is the account history kept in the state: lines by account,
// then by index (the order of commits), with a count per account.
type HistoryTable struct {
	t     Table[HistoryEntry]
	count counts // derived
}

func historyKey(account string, index uint64) string {
	return account + "\x00" + fmt.Sprintf("%020d", index)
}

func (h *HistoryTable) put(e HistoryEntry) {
	h.t.Put(historyKey(e.AccountID, e.Index), e)
	h.count.Add(e.AccountID, 1)
}

func (h *HistoryTable) delete(e *HistoryEntry) {
	h.t.Delete(historyKey(e.AccountID, e.Index))
	h.count.Add(e.AccountID, -1)
}

// Len is the number of lines kept.
func (h HistoryTable) Len() int { return h.t.Len() }

// All yields every line kept, by account, then in commit order.
func (h HistoryTable) All() iter.Seq[HistoryEntry] {
	return func(yield func(HistoryEntry) bool) {
		for _, e := range h.t.All() {
			if !yield(e) {
				return
			}
		}
	}
}

// Account yields an account's lines kept in the state, in commit order.
// Older lines are in each node's archive.
func (h HistoryTable) Account(id string) iter.Seq[HistoryEntry] {
	return func(yield func(HistoryEntry) bool) {
		for _, e := range h.t.Prefix(id + "\x00") {
			if !yield(e) {
				return
			}
		}
	}
}

// Oldest is the index of an account's oldest line kept in the state (0 if
// it has none): the archive holds the lines before it.
func (h HistoryTable) Oldest(id string) uint64 {
	for e := range h.Account(id) {
		return e.Index
	}
	return 0
}

// historyOf builds the table from lines in any order (a restore).
func historyOf(lines []HistoryEntry) HistoryTable {
	es := make([]entry[*HistoryEntry], len(lines))
	accounts := make([]string, len(lines))
	for i := range lines {
		e := &lines[i]
		es[i] = entry[*HistoryEntry]{historyKey(e.AccountID, e.Index), e}
		accounts[i] = e.AccountID
	}
	return HistoryTable{t: Table[HistoryEntry]{buildIndex(es)}, count: countKeys(accounts)}
}

// MarshalJSON writes the lines as a JSON array, in key order.
func (h HistoryTable) MarshalJSON() ([]byte, error) {
	lines := make([]HistoryEntry, 0, h.Len())
	for e := range h.All() {
		lines = append(lines, e)
	}
	return json.Marshal(lines)
}

// UnmarshalJSON reads a JSON array of lines, in any order (version 1
// snapshots hold them in commit order).
func (h *HistoryTable) UnmarshalJSON(b []byte) error {
	var lines []HistoryEntry
	if err := json.Unmarshal(b, &lines); err != nil {
		return err
	}
	*h = historyOf(lines)
	return nil
}

// accountOf is the account an operator acts for.
func (s *State) accountOf(operatorID string) string { return s.Operators.At(operatorID).AccountID }

func (s *State) describe(c command.Command, value any) (area, action, account string) {
	account = s.accountOf(c.Actor)
	switch b := c.Body.(type) {
	case *command.CreateSite:
		return "Customer Sites", "New site created : " + b.Name, b.AccountID
	case *command.DeleteSite:
		return "Customer Sites", "Site deleted : " + b.ID, b.AccountID
	case *command.UpdateSite:
		return "Customer Sites", "Site updated : " + s.Sites.At(b.ID).Name, b.AccountID
	case *command.CreateReaderConfig:
		return "Reader Configurations", "Reader configuration imported : " + s.ReaderConfigs.At(b.ID).Name, b.AccountID
	case *command.DeleteReaderConfig:
		return "Reader Configurations", "Reader configuration deleted : " + b.ID, b.AccountID
	case *command.CreateCardholder:
		return "Cardholders", "Cardholder created : " + b.FirstName + " " + b.LastName, b.AccountID
	case *command.CreateCard:
		c := s.Cards.At(b.ID)
		return "Users (VCards)", "Virtual card created : " + c.FirstName + " " + c.LastName, b.AccountID
	case *command.ImportCards:
		return "Users (VCards)", fmt.Sprintf("%d virtual cards imported", len(b.Cards)), b.Cards[0].AccountID
	case *command.UpdateCard:
		return "Users (VCards)", "Virtual card updated : " + s.cardName(b.ID), b.AccountID
	case *command.SendCard:
		return "Users (VCards)", "Virtual card sent : " + s.cardName(b.ID), b.AccountID
	case *command.ActivateCard:
		c, _ := value.(Card)
		return "Users (VCards)", "Virtual card activated : " + s.cardName(c.ID), c.AccountID
	case *command.RevokeCard:
		return "Users (VCards)", "Virtual card revoke requested : " + s.cardName(b.ID), b.AccountID
	case *command.ConfirmRevoke:
		return "Users (VCards)", "Virtual card revoked : " + s.cardName(b.CardID), s.Cards.At(b.CardID).AccountID
	case *command.MarkLost:
		return "Users (VCards)", "Virtual card marked lost : " + s.cardName(b.ID), b.AccountID
	case *command.DeleteCard:
		return "Users (VCards)", "Virtual card deleted : " + b.ID, b.AccountID
	case *command.ArmEnrollment:
		if b.Disarm {
			return "Readers", "Enrollment disarmed : " + s.Readers.At(b.ReaderID).Name, b.AccountID
		}
		return "Readers", "Reader armed for enrollment : " + s.Readers.At(b.ReaderID).Name, b.AccountID
	case *command.EnrollCard:
		c, _ := value.(Card)
		return "Users (VCards)", "Virtual card enrolled at reader : " + s.cardName(c.ID), c.AccountID
	case *command.AddIssuer:
		return "Credits", "Credit issuer trusted : " + b.KeyID, account
	case *command.LoadVoucher:
		lv, _ := value.(LoadedVoucher)
		return "Credits", fmt.Sprintf("%d Credits loaded from voucher %s", lv.Credits, lv.ID), b.AccountID
	case *command.SetAlertThreshold:
		return "Credits", fmt.Sprintf("Credit alert threshold set to %d", b.Threshold), b.AccountID
	case *command.CreateAccount:
		return "Customer Accounts", "New account created : " + b.Name, b.ParentID
	case *command.UpdateAccount:
		return "Customer Accounts", "Account updated : " + s.Accounts.At(b.ID).Name, b.ParentID
	case *command.SetAccountStatus:
		verb := "disabled"
		if b.Enable {
			verb = "enabled"
		}
		return "Customer Accounts", "Account " + verb + " : " + s.Accounts.At(b.ID).Name, b.ParentID
	case *command.DeleteAccount:
		return "Customer Accounts", "Account deleted : " + b.ID, b.ParentID
	case *command.TransferCredits:
		return "Customer Accounts", fmt.Sprintf("%d Credits transferred to account successfully : %s", b.Credits, s.Accounts.At(b.To).Name), b.From
	case *command.CreateProfile:
		return "Users and Profiles", "Profile created : " + b.Name, b.AccountID
	case *command.UpdateProfile:
		return "Users and Profiles", "Profile updated : " + b.Name, b.AccountID
	case *command.DeleteProfile:
		return "Users and Profiles", "Profile deleted : " + b.ID, b.AccountID
	case *command.CreateOperator:
		return "Users and Profiles", "User created : " + b.FirstName + " " + b.LastName, b.AccountID
	case *command.UpdateOperator:
		o := s.Operators.At(b.ID)
		return "Users and Profiles", "User updated : " + o.FirstName + " " + o.LastName, b.AccountID
	case *command.SetOperatorStatus:
		o := s.Operators.At(b.ID)
		verb := "disabled"
		if b.Enable {
			verb = "enabled"
		}
		return "Users and Profiles", "User " + verb + " : " + o.FirstName + " " + o.LastName, b.AccountID
	case *command.DeleteOperator:
		return "Users and Profiles", "User deleted : " + b.ID, b.AccountID
	case *command.AcceptInvitation:
		o, _ := value.(Operator)
		return "Users and Profiles", "User activated : " + o.FirstName + " " + o.LastName, o.AccountID
	case *command.CreateToken:
		return "API Settings", "API token created : " + b.Name, account
	case *command.DeleteToken:
		return "API Settings", "API token revoked : " + b.ID, b.AccountID
	case *command.UpdateCardholder:
		h := s.Cardholders.At(b.ID)
		return "Cardholders", "Cardholder updated : " + h.FirstName + " " + h.LastName, b.AccountID
	case *command.DeleteCardholder:
		return "Cardholders", "Cardholder deleted : " + b.ID, b.AccountID
	case *command.CreateConfigurator:
		return "Configurators", "Configurator created : " + b.FirstName + " " + b.LastName, b.AccountID
	case *command.UpdateConfigurator:
		cf := s.Configurators.At(b.ID)
		return "Configurators", "Configurator updated : " + cf.FirstName + " " + cf.LastName, b.AccountID
	case *command.DeleteConfigurator:
		return "Configurators", "Configurator deleted : " + b.ID, b.AccountID
	case *command.CreateConfigCard:
		return "Configurators", "Configuration " + b.ReaderConfig + " assigned : " + s.cardName(b.ID), b.AccountID
	case *command.SetTemplate:
		return "Personalization", "Message text set : " + b.Kind, b.AccountID
	case *command.CreateReader:
		return "Readers", "Reader created : " + b.Name, b.AccountID
	case *command.UpdateReader:
		return "Readers", "Reader updated : " + s.Readers.At(b.ID).Name, b.AccountID
	case *command.DeleteReader:
		return "Readers", "Reader deleted : " + b.ID, b.AccountID
	case *command.CreateSchedule:
		return "Readers", "Schedule created : " + b.Name, b.AccountID
	case *command.CreateAccessLevel:
		return "Readers", "Access level created : " + b.Name, b.AccountID
	case *command.RemoveNode:
		return "Cluster", "Node removed : " + b.NodeID, account
	case *command.AddMember:
		return "Cluster", "Node let in : " + b.NodeID, account
	case *command.SetJoinToken:
		return "Cluster", "Join token rotated", account
	}
	return "", "", ""
}

func (s *State) cardName(id string) string {
	c := s.Cards.At(id)
	return c.FirstName + " " + c.LastName
}
