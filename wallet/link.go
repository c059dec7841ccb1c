package wallet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"lintel/reader"
	"lintel/reader/exchange"
)

// LinkTimeout bounds each step of an exchange on the reader link.
const LinkTimeout = 10 * time.Second

// PresentResult is what `lintel wallet present` prints.
type PresentResult struct {
	Result string `json:"result"` // granted or denied
	Reason string `json:"reason"`
	CardID string `json:"card_id"`
	// Deleted: the reader said to delete the card and the wallet did.
	Deleted bool `json:"deleted,omitempty"`
	// Receipt: confirmed when the node committed the deletion receipt,
	// pending when the next check-in must send it again.
	Receipt string `json:"receipt,omitempty"`
	// Ignored says why a delete instruction was not carried out.
	Ignored string `json:"ignored,omitempty"`
}

// Present runs the credential exchange (SPEC 6.1) for card cardID (empty:
// the only card held) at reader readerID through the node's reader link.
func (w *Wallet) Present(ctx context.Context, link, readerID, cardID string) (PresentResult, error) {
	c, err := w.pick(cardID)
	if err != nil {
		return PresentResult{}, err
	}
	res := PresentResult{CardID: c.CardID}
	conn, r, ch, refused, err := openExchange(ctx, link, readerID)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	step := func() { conn.SetDeadline(time.Now().Add(LinkTimeout)) }
	if refused != nil {
		res.Result, res.Reason = "denied", string(refused.Reason)
		return res, nil
	}
	p, err := exchange.Respond(ch, c.CardID, c.Sign)
	if err != nil {
		return res, err
	}
	step()
	if err := send(conn, p); err != nil {
		return res, &NetError{Node: link, Err: err}
	}
	var v exchange.Verdict
	if err := readInto(r, &v); err != nil {
		return res, fmt.Errorf("reader link: %w", err)
	}
	if v.Nonce != ch.Nonce {
		return res, errors.New("reader link: the verdict belongs to another exchange")
	}
	res.Result, res.Reason = "denied", string(v.Reason)
	if v.Granted {
		res.Result = "granted"
	}
	if !v.Delete {
		return res, nil
	}
	if c.VerdictKey != nil {
		// Only the cluster can tell this phone to destroy a card; a rogue
		// reader's unsigned or forged instruction is ignored.
		if err := exchange.VerifyVerdict(v, readerID, c.CardID, c.VerdictKey); err != nil {
			res.Ignored = "delete instruction ignored: " + err.Error()
			return res, nil
		}
	}
	sig, err := w.Delete(c.CardID)
	if err != nil {
		return res, err
	}
	res.Deleted, res.Receipt = true, ReceiptPending
	step()
	rc := exchange.Receipt{CardID: c.CardID, Signature: sig}
	if err := send(conn, rc); err != nil {
		return res, nil // kept in the wallet: the next check-in sends it
	}
	// The node echoes the receipt once the revoke is committed.
	var ack exchange.Receipt
	if err := readInto(r, &ack); err == nil && ack.CardID == c.CardID {
		w.ReceiptDelivered(c.CardID)
		res.Receipt = ReceiptConfirmed
		if err := w.Save(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// openExchange dials the reader link, names the reader and reads the
// reader's first frame: its challenge, or a verdict refusing before any
// challenge (not this node's reader).
func openExchange(ctx context.Context, link, readerID string) (net.Conn, *bufio.Reader, exchange.Challenge, *exchange.Verdict, error) {
	var ch exchange.Challenge
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", link)
	if err != nil {
		return nil, nil, ch, nil, &NetError{Node: link, Err: err}
	}
	fail := func(err error) (net.Conn, *bufio.Reader, exchange.Challenge, *exchange.Verdict, error) {
		conn.Close()
		return nil, nil, ch, nil, err
	}
	conn.SetDeadline(time.Now().Add(LinkTimeout))
	r := bufio.NewReader(conn)
	if _, err := conn.Write(reader.Hello(readerID)); err != nil {
		return fail(&NetError{Node: link, Err: err})
	}
	f, err := exchange.ReadFrame(r)
	if err != nil {
		return fail(fmt.Errorf("reader link: %w", err))
	}
	if f.Type == exchange.TypeVerdict {
		var v exchange.Verdict
		if err := exchange.DecodeInto(f, &v); err != nil {
			return fail(fmt.Errorf("reader link: %w", err))
		}
		return conn, r, ch, &v, nil
	}
	if err := exchange.DecodeInto(f, &ch); err != nil {
		return fail(fmt.Errorf("reader link: %w", err))
	}
	if ch.ReaderID != readerID {
		return fail(fmt.Errorf("reader link: challenge from reader %q, not %q", ch.ReaderID, readerID))
	}
	return conn, r, ch, nil, nil
}

func (w *Wallet) pick(cardID string) (*Card, error) {
	if cardID != "" {
		c, ok := w.Card(cardID)
		if !ok {
			return nil, fmt.Errorf("card %s is not in this wallet", cardID)
		}
		return c, nil
	}
	cards := w.Cards()
	switch len(cards) {
	case 0:
		return nil, errors.New("this wallet holds no card")
	case 1:
		return cards[0], nil
	}
	return nil, fmt.Errorf("this wallet holds %d cards: choose one with --card", len(cards))
}

type outgoing interface {
	Type() exchange.Type
	Marshal() ([]byte, error)
}

func send(c net.Conn, m outgoing) error {
	p, err := m.Marshal()
	if err != nil {
		return err
	}
	return exchange.WriteFrame(c, exchange.Frame{Type: m.Type(), Payload: p})
}

func readInto(r *bufio.Reader, m exchange.Message) error {
	f, err := exchange.ReadFrame(r)
	if err != nil {
		return err
	}
	return exchange.DecodeInto(f, m)
}
