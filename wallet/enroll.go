package wallet

import (
	"context"
	"fmt"
	"time"

	"lintel/consensus/state"
	"lintel/reader/exchange"
)

// EnrollResult is what `lintel wallet enroll` prints.
type EnrollResult struct {
	Result string `json:"result"` // enrolled or denied
	Reason string `json:"reason"`
	CardID string `json:"card_id,omitempty"`
}

// Enroll presents a new key at a reader armed for enrollment (seed 002):
// the node binds it to the cardholder the reader was armed for and answers
// the new card's id, which the wallet then holds like an activated card.
func (w *Wallet) Enroll(ctx context.Context, link, readerID string) (EnrollResult, error) {
	key, err := newKey()
	if err != nil {
		return EnrollResult{}, err
	}
	c := &Card{key: key, Kind: state.KindDeviceID, Status: state.CardActivated}
	conn, r, ch, refused, err := openExchange(ctx, link, readerID)
	if err != nil {
		return EnrollResult{}, err
	}
	defer conn.Close()
	if refused != nil {
		return EnrollResult{Result: "denied", Reason: string(refused.Reason)}, nil
	}
	e, err := exchange.RespondEnrollment(ch, c.PublicKeyDER(), c.Sign)
	if err != nil {
		return EnrollResult{}, err
	}
	conn.SetDeadline(time.Now().Add(LinkTimeout))
	if err := send(conn, e); err != nil {
		return EnrollResult{}, &NetError{Node: link, Err: err}
	}
	f, err := exchange.ReadFrame(r)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("reader link: %w", err)
	}
	var v exchange.Verdict
	if exchange.DecodeInto(f, &v) == nil {
		return EnrollResult{Result: "denied", Reason: string(v.Reason)}, nil
	}
	var done exchange.Enrolled
	if err := exchange.DecodeInto(f, &done); err != nil {
		return EnrollResult{}, fmt.Errorf("reader link: %w", err)
	}
	if done.Nonce != ch.Nonce {
		return EnrollResult{}, fmt.Errorf("reader link: the answer belongs to another exchange")
	}
	if _, dup := w.Card(done.CardID); dup {
		return EnrollResult{}, fmt.Errorf("reader link: card id %s is already in this wallet", done.CardID)
	}
	c.CardID, c.SiteID, c.ActivatedAt = done.CardID, ch.SiteID, w.now().UTC()
	w.cards = append(w.cards, c)
	if err := w.Save(); err != nil {
		return EnrollResult{}, err
	}
	return EnrollResult{Result: "enrolled", CardID: c.CardID}, nil
}
