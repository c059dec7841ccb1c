package state

import (
	"time"
)

// Ledger is an account's credits (SPEC 5.4, seed 003 "Available credit").
//
//	Loaded + TransfersIn - TransfersOut = Balance + Used - Refunded
//	0 <= Reserved <= Balance
//
// Sending a card reserves its cost; activation turns the reservation into a
// debit (Balance and Reserved fall, Used rises); a confirmed revoke refunds
// it (Balance and Refunded rise). Credits lost stay in Used: they never return.
type Ledger struct {
	Loaded         int64      `json:"loaded"`
	TransfersIn    int64      `json:"transfers_in"`
	TransfersOut   int64      `json:"transfers_out"`
	Balance        int64      `json:"balance"`
	Reserved       int64      `json:"reserved"`
	Used           int64      `json:"used"`
	Refunded       int64      `json:"refunded"`
	Lost           int64      `json:"lost"`
	AlertThreshold int64      `json:"alert_threshold"`
	LastLoaded     *time.Time `json:"last_loaded"`
}

// Available is what new sends and transfers may spend.
func (l Ledger) Available() int64 { return l.Balance - l.Reserved }

// Alert is on when the available credit is at or under the threshold.
func (l Ledger) Alert() bool { return l.AlertThreshold > 0 && l.Available() <= l.AlertThreshold }

// The ledger moves. Each returns the new ledger; the caller stores it.

func (l Ledger) reserve(n int64) (Ledger, *Rejection) {
	if n > l.Available() {
		return l, reject(Conflict, "insufficient_credit", "", "sending this card needs %d credits and %d are available; load a voucher or ask your reseller for a transfer", n, l.Available())
	}
	l.Reserved += n
	return l, nil
}

func (l Ledger) release(n int64) Ledger { l.Reserved -= n; return l }

func (l Ledger) debit(n int64) Ledger {
	l.Reserved -= n
	l.Balance -= n
	l.Used += n
	return l
}

func (l Ledger) refund(n int64) Ledger {
	l.Balance += n
	l.Refunded += n
	return l
}

// lose records debited credits that will never come back.
func (l Ledger) lose(n int64) Ledger { l.Lost += n; return l }

// CheckLedger verifies one account's invariants; nil when they hold.
func CheckLedger(l Ledger) error {
	if l.Loaded+l.TransfersIn-l.TransfersOut != l.Balance+l.Used-l.Refunded {
		return errorf("loaded %d + in %d - out %d != balance %d + used %d - refunded %d",
			l.Loaded, l.TransfersIn, l.TransfersOut, l.Balance, l.Used, l.Refunded)
	}
	if l.Reserved < 0 || l.Reserved > l.Balance {
		return errorf("reserved %d is outside 0..balance %d", l.Reserved, l.Balance)
	}
	return nil
}
