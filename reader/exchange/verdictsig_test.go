package exchange

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

func TestVerdictSignature(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	v := SignVerdict(Verdict{Reason: ReasonRevoked, Delete: true, Nonce: testNonce}, "front", "card-1", key)
	if err := VerifyVerdict(v, "front", "card-1", pub); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	// The signature survives the wire.
	f, _ := Encode(&v)
	var back Verdict
	if err := DecodeInto(f, &back); err != nil || VerifyVerdict(back, "front", "card-1", pub) != nil {
		t.Fatalf("after the wire: %v", err)
	}
	// Any change breaks it: another card, reader, nonce, reason, the delete
	// flag dropped or added; another key; no signature.
	changed := []func(Verdict) (Verdict, string, string){
		func(v Verdict) (Verdict, string, string) { return v, "front", "card-2" },
		func(v Verdict) (Verdict, string, string) { return v, "back", "card-1" },
		func(v Verdict) (Verdict, string, string) { v.Nonce[3] ^= 1; return v, "front", "card-1" },
		func(v Verdict) (Verdict, string, string) { v.Reason = ReasonLost; return v, "front", "card-1" },
		func(v Verdict) (Verdict, string, string) { v.Delete = false; return v, "front", "card-1" },
	}
	for i, c := range changed {
		w, r, card := c(v)
		if err := VerifyVerdict(w, r, card, pub); !errors.Is(err, ErrBadVerdictSignature) {
			t.Errorf("change %d: %v", i, err)
		}
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := VerifyVerdict(v, "front", "card-1", other); !errors.Is(err, ErrBadVerdictSignature) {
		t.Errorf("other key: %v", err)
	}
	v.Signature = nil
	if err := VerifyVerdict(v, "front", "card-1", pub); !errors.Is(err, ErrUnsignedVerdict) {
		t.Errorf("unsigned: %v", err)
	}
}
