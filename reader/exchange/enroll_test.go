package exchange

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
)

func TestEnrollmentSignedByTheKeyItCarries(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	sign := func(m []byte) ([]byte, error) {
		sum := sha256.Sum256(m)
		return ecdsa.SignASN1(rand.Reader, k, sum[:])
	}
	ch := Challenge{Version: ProtocolVersion, Nonce: testNonce, ReaderID: "front", SiteID: "s"}
	e, err := RespondEnrollment(ch, der, sign)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEnrollment(e, ch); err != nil {
		t.Fatalf("good enrollment: %v", err)
	}
	// Another reader, another nonce, another key, a bad key.
	other := ch
	other.ReaderID = "back"
	if err := VerifyEnrollment(e, other); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other reader: %v", err)
	}
	other = ch
	other.Nonce[0] ^= 1
	if err := VerifyEnrollment(e, other); !errors.Is(err, ErrNonceMismatch) {
		t.Errorf("other nonce: %v", err)
	}
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der2, _ := x509.MarshalPKIXPublicKey(&k2.PublicKey)
	swapped := e
	swapped.DeviceKey = der2
	if err := VerifyEnrollment(swapped, ch); !errors.Is(err, ErrBadSignature) {
		t.Errorf("swapped key: %v", err)
	}
	swapped.DeviceKey = []byte{0x30, 0x01, 0x00}
	if err := VerifyEnrollment(swapped, ch); !errors.Is(err, ErrBadKey) {
		t.Errorf("bad key: %v", err)
	}
	// A presentation signature never verifies as an enrollment.
	psig, _ := sign(SignedMessage(ch.Nonce, ch.ReaderID, string(der[:10])))
	e.Signature = psig
	if err := VerifyEnrollment(e, ch); !errors.Is(err, ErrBadSignature) {
		t.Errorf("presentation signature taken as enrollment: %v", err)
	}
}
