package exchange

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"

	"lintel/consensus/command"
)

// RespondEnrollment is the phone's side of an enrollment: it signs
// command.EnrollmentMessage for the challenge's nonce and reader with the
// key whose PKIX DER is deviceKey.
func RespondEnrollment(c Challenge, deviceKey []byte, sign func([]byte) ([]byte, error)) (Enrollment, error) {
	if err := c.Validate(); err != nil {
		return Enrollment{}, err
	}
	sig, err := sign(command.EnrollmentMessage(c.Nonce[:], c.ReaderID, deviceKey))
	if err != nil {
		return Enrollment{}, err
	}
	e := Enrollment{Nonce: c.Nonce, DeviceKey: deviceKey, Signature: sig}
	return e, e.Validate()
}

// VerifyEnrollment checks that e answers c and is signed by the key it
// carries, so the phone holds that key. The state checks the same again
// when it applies the EnrollCard command.
func VerifyEnrollment(e Enrollment, c Challenge) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.Nonce != c.Nonce {
		return ErrNonceMismatch
	}
	k, err := x509.ParsePKIXPublicKey(e.DeviceKey)
	if err != nil {
		return ErrBadKey
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve.Params().Name != "P-256" {
		return ErrBadKey
	}
	sum := sha256.Sum256(command.EnrollmentMessage(c.Nonce[:], c.ReaderID, e.DeviceKey))
	if !ecdsa.VerifyASN1(ek, sum[:], e.Signature) {
		return ErrBadSignature
	}
	return nil
}
