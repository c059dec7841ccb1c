package voucher

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; whatever parses re-encodes to its canonical
// text, which parses to the same voucher; Verify never panics and answers
// with one of the sentinel errors.
func FuzzParse(f *testing.F) {
	k := testKey(f, 1)
	_, good := Issue(k, "acct-1", "INV-2025-0042", 500, issuedAt)
	f.Add(good)
	f.Add([]byte(strings.ReplaceAll(string(good), "\n", "\r\n")))
	f.Add([]byte("\uFEFF  " + strings.ReplaceAll(string(good), ": ", ":\t")))
	f.Add([]byte(strings.Replace(string(good), "credits: 500", "credits: 0500", 1)))
	f.Add([]byte(strings.Replace(string(good), "signature: ", "signature: =", 1)))
	f.Add([]byte("lintel-voucher 1\n"))
	f.Add([]byte("lintel-voucher 2\nid: x\n"))
	f.Add([]byte(""))
	f.Add(MarshalPublicKey(k.Public()))
	trusted := []ed25519.PublicKey{k.Public(), testKey(f, 2).Public()}

	f.Fuzz(func(t *testing.T, text []byte) {
		v, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is more than one line: %q", err)
			}
			return
		}
		canon := v.Marshal()
		w, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical text does not parse: %v\n%s", err, canon)
		}
		if !same(v, w) {
			t.Fatalf("re-parsed %+v, first %+v", w, v)
		}
		if !bytes.Equal(w.Marshal(), canon) {
			t.Fatalf("canonical text is not stable:\n%s\n%s", canon, w.Marshal())
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("parsed voucher is not valid: %v", err)
		}
		err = v.Verify(trusted)
		if err != nil && !errors.Is(err, ErrUnknownIssuer) && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify: %v", err)
		}
		if err2 := w.Verify(trusted); (err == nil) != (err2 == nil) {
			t.Fatalf("Verify differs on the canonical text: %v, %v", err, err2)
		}
	})
}

// FuzzParseKeys: the key file parsers never panic, and what parses round-trips.
func FuzzParseKeys(f *testing.F) {
	k := testKey(f, 1)
	f.Add(MarshalPrivateKey(k))
	f.Add(MarshalPublicKey(k.Public()))
	f.Add([]byte("lintel-voucher-key 1\nseed:\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		if priv, err := ParsePrivateKey(text); err == nil {
			if again, err := ParsePrivateKey(MarshalPrivateKey(priv)); err != nil || again.KeyID() != priv.KeyID() {
				t.Fatalf("private key round trip: %v", err)
			}
		}
		if pub, err := ParsePublicKey(text); err == nil {
			if again, err := ParsePublicKey(MarshalPublicKey(pub)); err != nil || !again.Equal(pub) {
				t.Fatalf("public key round trip: %v", err)
			}
		}
	})
}
