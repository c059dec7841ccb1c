package state

import (
	"crypto/ed25519"
	"errors"
	"sort"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state/voucher"
)

// Issuer is a trusted credit-issuer key (SPEC 5.7).
type Issuer struct {
	KeyID     string    `json:"key_id"`
	PublicKey []byte    `json:"public_key"`
	Name      string    `json:"name"`
	AddedAt   time.Time `json:"added_at"`
}

// LoadedVoucher records a voucher that loaded: each voucher id loads once.
type LoadedVoucher struct {
	ID        string    `json:"id"`
	Issuer    string    `json:"issuer"`
	AccountID string    `json:"account_id"`
	Credits   int64     `json:"credits"`
	LoadedAt  time.Time `json:"loaded_at"`
	LoadedBy  string    `json:"loaded_by"`
}

func (s *State) applyAddIssuer(c command.Command, b *command.AddIssuer, ch *changes) (any, *Rejection) {
	if len(b.PublicKey) != ed25519.PublicKeySize || voucher.KeyID(b.PublicKey) != b.KeyID {
		return nil, reject(Invalid, "invalid_value", "public_key", "the issuer key is not an Ed25519 public key matching its key id")
	}
	if _, ok := s.Issuers.Get(b.KeyID); ok {
		return s.Issuers.At(b.KeyID), nil // trusting a key twice is trusting it once
	}
	is := Issuer{KeyID: b.KeyID, PublicKey: append([]byte(nil), b.PublicKey...), Name: b.Name, AddedAt: c.At.UTC()}
	s.Issuers.Put(b.KeyID, is)
	ch.put("issuers", b.KeyID)
	return is, nil
}

func (s *State) trustedKeys() []ed25519.PublicKey {
	ids := make([]string, 0, s.Issuers.Len())
	for id := range s.Issuers.All() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	keys := make([]ed25519.PublicKey, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, s.Issuers.At(id).PublicKey)
	}
	return keys
}

func (s *State) applyLoadVoucher(c command.Command, b *command.LoadVoucher, ch *changes) (any, *Rejection) {
	v, err := voucher.Parse(b.Voucher)
	if err != nil {
		return nil, reject(Invalid, "invalid_voucher", "voucher", "%v", err)
	}
	if err := v.Verify(s.trustedKeys()); err != nil {
		code := "invalid_voucher"
		switch {
		case errors.Is(err, voucher.ErrUnknownIssuer):
			code = "unknown_issuer"
		case errors.Is(err, voucher.ErrBadSignature):
			code = "bad_signature"
		}
		return nil, reject(Forbidden, code, "voucher", "%v", err)
	}
	if v.Account != b.AccountID {
		return nil, reject(Forbidden, "wrong_account", "voucher", "this voucher is for account %s, not this one (%s)", v.Account, b.AccountID)
	}
	acc, ok := s.Accounts.Get(b.AccountID)
	if !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.AccountID)
	}
	if _, used := s.Vouchers.Get(v.ID); used {
		return nil, reject(Conflict, "voucher_used", "voucher", "voucher %s was already loaded; each voucher loads once", v.ID)
	}
	acc.Credits.Loaded += v.Credits
	acc.Credits.Balance += v.Credits
	acc.Credits.LastLoaded = ptime(c.At)
	s.Accounts.Put(acc.ID, acc)
	lv := LoadedVoucher{ID: v.ID, Issuer: v.Issuer, AccountID: acc.ID, Credits: v.Credits, LoadedAt: c.At.UTC(), LoadedBy: c.Actor}
	s.Vouchers.Put(v.ID, lv)
	ch.put("accounts", acc.ID)
	ch.put("vouchers", v.ID)
	return lv, nil
}

func (s *State) applySetAlertThreshold(b *command.SetAlertThreshold, ch *changes) (any, *Rejection) {
	acc, ok := s.Accounts.Get(b.AccountID)
	if !ok {
		return nil, reject(NotFound, "account_not_found", "", "account %s does not exist", b.AccountID)
	}
	if b.Threshold < 0 {
		return nil, reject(Invalid, "invalid_value", "alert_threshold", "the alert threshold cannot be negative")
	}
	acc.Credits.AlertThreshold = b.Threshold
	s.Accounts.Put(acc.ID, acc)
	ch.put("accounts", acc.ID)
	return acc.Credits, nil
}

// CheckInvariants verifies the ledger rules of SPEC 5.4 on the whole state:
// every account's equation and reservation bounds; every card's credits
// against its status; reservations and debits per account against the
// cards that hold them; and the cluster's total: vouchers = balances +
// credits in use + credits lost. Nil when all hold.
func (s *State) CheckInvariants() error {
	type sums struct{ reserved, inUse int64 }
	per := map[string]*sums{}
	var inUse int64
	for _, c := range s.Cards.All() {
		p := per[c.AccountID]
		if p == nil {
			p = &sums{}
			per[c.AccountID] = p
		}
		switch {
		case c.Status == CardSent:
			p.reserved += c.Credits
		case c.holdsCredits():
			p.inUse += c.Credits
			inUse += c.Credits
		case c.Credits != 0:
			return errorf("card %s is %s but holds %d credits", c.ID, c.Status, c.Credits)
		}
	}
	var loaded, balances, lost int64
	for _, lv := range s.Vouchers.All() {
		loaded += lv.Credits
	}
	for id, a := range s.Accounts.All() {
		if err := CheckLedger(a.Credits); err != nil {
			return errorf("account %s: %v", id, err)
		}
		p := per[id]
		if p == nil {
			p = &sums{}
		}
		if a.Credits.Reserved != p.reserved {
			return errorf("account %s reserves %d but its sent cards hold %d", id, a.Credits.Reserved, p.reserved)
		}
		if got := a.Credits.Used - a.Credits.Refunded - a.Credits.Lost; got != p.inUse {
			return errorf("account %s has %d credits in use (used - refunded - lost) but its cards hold %d", id, got, p.inUse)
		}
		balances += a.Credits.Balance
		lost += a.Credits.Lost
	}
	lost += s.LostWithAccounts
	if loaded != balances+inUse+lost {
		return errorf("vouchers %d != balances %d + in use %d + lost %d", loaded, balances, inUse, lost)
	}
	return nil
}
