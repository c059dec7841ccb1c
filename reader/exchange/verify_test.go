package exchange

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
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
		// With the key parsed first, the answer is the same.
		k, err := ParseDeviceKey(tc.der)
		if err != nil {
			if !errors.Is(err, ErrBadKey) || !errors.Is(tc.want, ErrBadKey) {
				t.Errorf("%s: ParseDeviceKey: %v, want %v", tc.name, err, tc.want)
			}
			continue
		}
		if err := VerifyWithKey(tc.p, tc.c, k); !errors.Is(err, tc.want) {
			t.Errorf("%s: VerifyWithKey: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := VerifyWithKey(p, c, nil); !errors.Is(err, ErrBadKey) {
		t.Errorf("nil key: %v", err)
	}
	if err := VerifyWithKey(p, c, &p384.PublicKey); !errors.Is(err, ErrBadKey) {
		t.Errorf("P-384 key: %v", err)
	}
	// The longest ids still verify (the message buffer is sized for them).
	long := c
	long.ReaderID = strings.Repeat("r", MaxIDLen)
	lp, err := Respond(long, strings.Repeat("c", MaxIDLen), d.sign)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := ParseDeviceKey(d.der); Verify(lp, long, d.der) != nil || VerifyWithKey(lp, long, k) != nil {
		t.Error("longest ids")
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

func TestAppendSignedMessage(t *testing.T) {
	prefix := []byte("xyz")
	got := AppendSignedMessage(prefix, testNonce, "rd", "c")
	if !bytes.Equal(got, append([]byte("xyz"), SignedMessage(testNonce, "rd", "c")...)) {
		t.Fatalf("%q", got)
	}
}

// ParseDeviceKey accepts exactly what x509.ParsePKIXPublicKey accepts as a
// P-256 key, and gives the same key: checked on good keys, every byte of one
// altered three ways, every truncation, trailing bytes, an out-of-range
// coordinate, a compressed point and keys of other kinds.
func TestParseDeviceKey(t *testing.T) {
	ref := func(der []byte) *ecdsa.PublicKey {
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil
		}
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil
		}
		return k
	}
	d := newDevice(t)
	inputs := [][]byte{d.der, newDevice(t).der, nil, {}, append(bytes.Clone(d.der), 0)}
	for i := range d.der {
		for _, f := range []func(byte) byte{
			func(b byte) byte { return b ^ 0x01 },
			func(b byte) byte { return b ^ 0x80 },
			func(byte) byte { return 0 },
		} {
			m := bytes.Clone(d.der)
			m[i] = f(m[i])
			inputs = append(inputs, m)
		}
		inputs = append(inputs, d.der[:i])
	}
	// X = p, the field prime: out of range, though the bytes fit.
	overflow := bytes.Clone(d.der)
	elliptic.P256().Params().P.FillBytes(overflow[27:59])
	inputs = append(inputs, overflow)
	// The compressed point, in a well-formed SPKI.
	compressed := append([]byte{0x30, 0x39}, d.der[2:25]...)
	compressed = append(compressed, 0x22, 0x00, 2+d.der[90]&1)
	compressed = append(compressed, d.der[27:59]...)
	inputs = append(inputs, compressed)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, pub := range []any{&p384.PublicKey, edPub} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, der)
	}
	accepted := 0
	for i, der := range inputs {
		want := ref(der)
		got, err := ParseDeviceKey(der)
		switch {
		case want == nil && (err == nil || !errors.Is(err, ErrBadKey)):
			t.Errorf("input %d (%x): %v, %v; x509 refuses it", i, der, got, err)
		case want != nil && (err != nil || !got.Equal(want) || got.Curve != elliptic.P256()):
			t.Errorf("input %d (%x): %v, %v; x509 accepts it", i, der, got, err)
		case want != nil:
			accepted++
		}
	}
	if accepted < 2 {
		t.Fatalf("only %d inputs accepted", accepted)
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
