package exchange

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
)

// VerdictDomain starts a signed verdict. Its 8th byte ('v') differs from
// every other Lintel signed message's.
const VerdictDomain = "lintel-verdict 1\n"

// ErrUnsignedVerdict and ErrBadVerdictSignature: a phone that knows the
// cluster's verdict key refuses a delete instruction without a good
// signature.
var (
	ErrUnsignedVerdict     = errors.New("exchange: the verdict is not signed")
	ErrBadVerdictSignature = errors.New("exchange: the verdict's signature is not the cluster's")
)

// VerdictMessage is what the reader signs: the domain, the nonce, the
// reader and the card the verdict answers, and the verdict itself.
//
//	VerdictDomain ‖ nonce ‖ u16be len ‖ reader id ‖ u16be len ‖ card id ‖ flags (granted, delete) ‖ reason code
func VerdictMessage(v Verdict, readerID, cardID string) []byte {
	b := make([]byte, 0, len(VerdictDomain)+NonceSize+6+len(readerID)+len(cardID))
	b = append(b, VerdictDomain...)
	b = append(b, v.Nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(readerID)))
	b = append(b, readerID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cardID)))
	b = append(b, cardID...)
	var flags byte
	if v.Granted {
		flags |= flagGranted
	}
	if v.Delete {
		flags |= flagDelete
	}
	return append(b, flags, reasonCode[v.Reason])
}

// SignVerdict signs v for readerID and cardID with the cluster's key.
func SignVerdict(v Verdict, readerID, cardID string, key ed25519.PrivateKey) Verdict {
	v.Signature = ed25519.Sign(key, VerdictMessage(v, readerID, cardID))
	return v
}

// VerifyVerdict checks v's signature by the cluster's public key.
func VerifyVerdict(v Verdict, readerID, cardID string, pub ed25519.PublicKey) error {
	if v.Signature == nil {
		return ErrUnsignedVerdict
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, VerdictMessage(v, readerID, cardID), v.Signature) {
		return ErrBadVerdictSignature
	}
	return nil
}
