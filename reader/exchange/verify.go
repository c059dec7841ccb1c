package exchange

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"lintel/consensus/command"
)

// SignedDomain starts every signed presentation message. It differs from
// command.DeletionReceiptMessage's prefix ("lintel-deletion-receipt 1\n") in
// its 8th byte, so no presentation signature is a deletion receipt or a
// signature for any other Lintel message, and vice versa.
const SignedDomain = "lintel-credential-exchange 1\n"

// Verification errors.
var (
	ErrNonceMismatch = errors.New("exchange: presentation answers another challenge")
	ErrBadKey        = errors.New("exchange: device key is not an ECDSA P-256 PKIX key")
	ErrBadSignature  = errors.New("exchange: bad signature")
)

// SignedMessage is what a phone signs to present a card:
//
//	SignedDomain ‖ nonce (16 bytes) ‖ u16be len ‖ reader id ‖ u16be len ‖ card id
//
// The length prefixes make the split between the ids unambiguous. The phone
// signs SHA-256 of it with ECDSA P-256 (ASN.1), as wallet (*Card).Sign does.
func SignedMessage(nonce Nonce, readerID, cardID string) []byte {
	b := make([]byte, 0, len(SignedDomain)+NonceSize+4+len(readerID)+len(cardID))
	b = append(b, SignedDomain...)
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(readerID)))
	b = append(b, readerID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cardID)))
	return append(b, cardID...)
}

// Verify checks that p answers c and is signed by the device key (PKIX DER).
// It checks the nonce before the signature, so a replayed presentation is
// reported as ErrNonceMismatch rather than as a bad signature.
func Verify(p Presentation, c Challenge, devicePublicKeyDER []byte) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Nonce != c.Nonce {
		return ErrNonceMismatch
	}
	return verifySig(devicePublicKeyDER, SignedMessage(c.Nonce, c.ReaderID, p.CardID), p.Signature)
}

// VerifyReceipt checks a deletion receipt against the card's device key, as
// the node's ConfirmRevoke will; a reader checks it first so it forwards only
// receipts that will commit.
func VerifyReceipt(r Receipt, devicePublicKeyDER []byte) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return verifySig(devicePublicKeyDER, command.DeletionReceiptMessage(r.CardID), r.Signature)
}

func verifySig(der, msg, sig []byte) error {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return ErrBadKey
	}
	sum := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(k, sum[:], sig) {
		return ErrBadSignature
	}
	return nil
}

// Respond builds the phone's presentation for challenge c; sign is the card's
// device-key signer (wallet (*Card).Sign).
func Respond(c Challenge, cardID string, sign func([]byte) ([]byte, error)) (Presentation, error) {
	if err := c.Validate(); err != nil {
		return Presentation{}, err
	}
	if err := checkID("card id", cardID); err != nil {
		return Presentation{}, err
	}
	sig, err := sign(SignedMessage(c.Nonce, c.ReaderID, cardID))
	if err != nil {
		return Presentation{}, fmt.Errorf("exchange: signing presentation: %w", err)
	}
	p := Presentation{Nonce: c.Nonce, CardID: cardID, Signature: sig}
	return p, p.Validate()
}

// ReceiptFor builds the deletion receipt for cardID, signed over
// command.DeletionReceiptMessage so the node can commit it unchanged.
func ReceiptFor(cardID string, sign func([]byte) ([]byte, error)) (Receipt, error) {
	if err := checkID("card id", cardID); err != nil {
		return Receipt{}, err
	}
	sig, err := sign(command.DeletionReceiptMessage(cardID))
	if err != nil {
		return Receipt{}, fmt.Errorf("exchange: signing deletion receipt: %w", err)
	}
	r := Receipt{CardID: cardID, Signature: sig}
	return r, r.Validate()
}

// ReasonFor maps a protocol-layer failure to its denial reason: replays and
// signature failures; anything else in this package is a malformed exchange,
// which the reader also denies as bad_signature (nothing proved the card).
func ReasonFor(err error) Reason {
	switch {
	case err == nil:
		return ReasonNone
	case errors.Is(err, ErrReplay), errors.Is(err, ErrNonceMismatch):
		return ReasonReplay
	default:
		return ReasonBadSignature
	}
}
