package exchange

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"

	"lintel/consensus/command"
)

func TestSignedMessageLayout(t *testing.T) {
	got := SignedMessage(testNonce, "rd", "c")
	want := append(append([]byte("lintel-credential-exchange 1\n"), testNonce[:]...), 0, 2, 'r', 'd', 0, 1, 'c')
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// The length prefixes keep the id boundary: ("ab","c") and ("a","bc") differ.
	if bytes.Equal(SignedMessage(testNonce, "ab", "c"), SignedMessage(testNonce, "a", "bc")) {
		t.Fatal("ambiguous id boundary")
	}
	if bytes.HasPrefix(got, command.DeletionReceiptMessage("")) {
		t.Fatal("domains overlap")
	}
}

func TestVerify(t *testing.T) {
	d := newDevice(t)
	c := testChallenge()
	p, err := Respond(c, "card-1", d.sign)
	if err != nil {
		t.Fatal(err)
	}
	if p.Nonce != c.Nonce || p.CardID != "card-1" {
		t.Fatalf("%+v", p)
	}
	if err := Verify(p, c, d.der); err != nil {
		t.Fatalf("valid presentation: %v", err)
	}
	// Through the wire and back, it still verifies.
	f, _ := Encode(&p)
	var q Presentation
	if err := DecodeInto(f, &q); err != nil || Verify(q, c, d.der) != nil {
		t.Fatalf("after the wire: %v", err)
	}

	other := newDevice(t)
	otherNonce := c
	otherNonce.Nonce[0] ^= 1
	otherReader := c
	otherReader.ReaderID = "reader-lobby-2"
	otherCard := p
	otherCard.CardID = "card-2"
	flipped := p
	flipped.Signature = bytes.Clone(p.Signature)
	flipped.Signature[len(flipped.Signature)-1] ^= 1
	// A presentation that echoes the new nonce but was signed for the old one.
	forgedNonce := p
	forgedNonce.Nonce = otherNonce.Nonce
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)

	cases := []struct {
		name string
		p    Presentation
		c    Challenge
		der  []byte
		want error
	}{
		{"changed nonce", p, otherNonce, d.der, ErrNonceMismatch},
		{"nonce echoed but not signed", forgedNonce, otherNonce, d.der, ErrBadSignature},
		{"changed reader id", p, otherReader, d.der, ErrBadSignature},
		{"changed card id", otherCard, c, d.der, ErrBadSignature},
		{"another key", p, c, other.der, ErrBadSignature},
		{"flipped signature byte", flipped, c, d.der, ErrBadSignature},
		{"garbage key", p, c, []byte{1, 2, 3}, ErrBadKey},
		{"ed25519 key", p, c, edDER, ErrBadKey},
		{"P-384 key", p, c, p384DER, ErrBadKey},
		{"bad challenge", p, Challenge{Version: 1, Nonce: c.Nonce, SiteID: "s"}, d.der, ErrEmptyID},
	}
	for _, tc := range cases {
		if err := Verify(tc.p, tc.c, tc.der); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if r := ReasonFor(Verify(p, otherNonce, d.der)); r != ReasonReplay {
		t.Errorf("mismatched nonce → %s", r)
	}
	if r := ReasonFor(Verify(p, c, other.der)); r != ReasonBadSignature {
		t.Errorf("another key → %s", r)
	}
	if r := ReasonFor(ErrNonceExpired); r != ReasonReplay {
		t.Errorf("expired nonce → %s", r)
	}
}

func TestRespondRefuses(t *testing.T) {
	d := newDevice(t)
	boom := errors.New("secure element locked")
	if _, err := Respond(testChallenge(), "card-1", func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := Respond(testChallenge(), "card\n1", d.sign); !errors.Is(err, ErrIDNotPrintable) {
		t.Fatal(err)
	}
	if _, err := Respond(Challenge{Version: 9, ReaderID: "r", SiteID: "s"}, "c", d.sign); !errors.Is(err, ErrBadVersion) {
		t.Fatal(err)
	}
	long := func([]byte) ([]byte, error) { return make([]byte, 80), nil }
	if _, err := Respond(testChallenge(), "c", long); !errors.Is(err, ErrSignatureTooLong) {
		t.Fatal(err)
	}
}

func TestReceipt(t *testing.T) {
	d := newDevice(t)
	r, err := ReceiptFor("card-1", d.sign)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyReceipt(r, d.der); err != nil {
		t.Fatal(err)
	}
	if err := VerifyReceipt(r, newDevice(t).der); !errors.Is(err, ErrBadSignature) {
		t.Fatal(err)
	}
	r2 := r
	r2.CardID = "card-2"
	if err := VerifyReceipt(r2, d.der); !errors.Is(err, ErrBadSignature) {
		t.Fatal(err)
	}
	// A presentation signature is never a deletion receipt, even for the same card.
	p, _ := Respond(testChallenge(), "card-1", d.sign)
	if err := VerifyReceipt(Receipt{CardID: "card-1", Signature: p.Signature}, d.der); !errors.Is(err, ErrBadSignature) {
		t.Fatal(err)
	}
}
