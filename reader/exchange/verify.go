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
	return AppendSignedMessage(make([]byte, 0, len(SignedDomain)+NonceSize+4+len(readerID)+len(cardID)), nonce, readerID, cardID)
}

// AppendSignedMessage appends SignedMessage(nonce, readerID, cardID) to b.
func AppendSignedMessage(b []byte, nonce Nonce, readerID, cardID string) []byte {
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
	if err := checkExchange(p, c); err != nil {
		return err
	}
	k, err := ParseDeviceKey(devicePublicKeyDER)
	if err != nil {
		return err
	}
	return verifyPresentation(p, c, k)
}

// VerifyWithKey is Verify with the device key already parsed by
// ParseDeviceKey, for a caller that keeps parsed keys: it gives the same
// answer as Verify on the DER the key came from.
func VerifyWithKey(p Presentation, c Challenge, key *ecdsa.PublicKey) error {
	if err := checkExchange(p, c); err != nil {
		return err
	}
	if key == nil || key.Curve != elliptic.P256() {
		return ErrBadKey
	}
	return verifyPresentation(p, c, key)
}

func checkExchange(p Presentation, c Challenge) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Nonce != c.Nonce {
		return ErrNonceMismatch
	}
	return nil
}

// maxSignedMessage bounds SignedMessage for ids within MaxIDLen.
const maxSignedMessage = len(SignedDomain) + NonceSize + 4 + 2*MaxIDLen

// verifyPresentation checks the signature of a validated p over c with a
// P-256 key; the message is built on the stack.
func verifyPresentation(p Presentation, c Challenge, key *ecdsa.PublicKey) error {
	var buf [maxSignedMessage]byte
	sum := sha256.Sum256(AppendSignedMessage(buf[:0], c.Nonce, c.ReaderID, p.CardID))
	if !ecdsa.VerifyASN1(key, sum[:], p.Signature) {
		return ErrBadSignature
	}
	return nil
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
	k, err := ParseDeviceKey(der)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(k, sum[:], sig) {
		return ErrBadSignature
	}
	return nil
}

// p256SPKIPrefix is the DER of a SubjectPublicKeyInfo for an uncompressed
// P-256 point, up to the point: SEQUENCE { SEQUENCE { id-ecPublicKey,
// prime256v1 }, BIT STRING (0 unused bits) }, as x509.MarshalPKIXPublicKey
// writes it. For such input, x509.ParsePKIXPublicKey is
// ecdsa.ParseUncompressedPublicKey of the 65 bytes after it.
const p256SPKIPrefix = "\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" +
	"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00"

// p256PointLen is the length of an uncompressed P-256 point (0x04 ‖ X ‖ Y).
const p256PointLen = 65

// ParseDeviceKey parses a device public key: PKIX DER holding an ECDSA P-256
// key, as x509.ParsePKIXPublicKey does. The usual encoding, 91 bytes, is
// taken apart directly (a fixed prefix and the point, which
// ecdsa.ParseUncompressedPublicKey checks is on the curve); anything else
// goes through crypto/x509. Errors wrap ErrBadKey.
func ParseDeviceKey(der []byte) (*ecdsa.PublicKey, error) {
	if len(der) == len(p256SPKIPrefix)+p256PointLen && string(der[:len(p256SPKIPrefix)]) == p256SPKIPrefix {
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), der[len(p256SPKIPrefix):])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		return k, nil
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, ErrBadKey
	}
	return k, nil
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
