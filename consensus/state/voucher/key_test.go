package voucher

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestKeyID(t *testing.T) {
	k := testKey(t, 7)
	sum := sha256.Sum256(k.Public())
	if id := k.KeyID(); id != hex.EncodeToString(sum[:8]) || len(id) != 16 || KeyID(k.Public()) != id {
		t.Fatalf("key id %q", id)
	}
	if testKey(t, 8).KeyID() == k.KeyID() {
		t.Fatal("two keys, one id")
	}
	if (PrivateKey{}).KeyID() != "" || (PrivateKey{}).Public() != nil {
		t.Fatal("zero key has an id")
	}
}

func TestNewKeyFromSeed(t *testing.T) {
	if _, err := NewKeyFromSeed(make([]byte, 31)); err == nil {
		t.Fatal("short seed accepted")
	}
	a, b := testKey(t, 7), testKey(t, 7)
	if a.KeyID() != b.KeyID() || len(a.Public()) != ed25519.PublicKeySize {
		t.Fatal("one seed, two keys")
	}
	// Issue is a function of the key and the fields (Ed25519 signs
	// deterministically): no randomness here.
	v, text := Issue(a, "acct", "V1", 1, issuedAt)
	if _, again := Issue(b, "acct", "V1", 1, issuedAt); !bytes.Equal(text, again) {
		t.Fatal("Issue is not deterministic")
	}
	if err := v.Verify([]ed25519.PublicKey{a.Public()}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyTextRoundTrip(t *testing.T) {
	k := testKey(t, 7)
	text := MarshalPrivateKey(k)
	seed := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if want := "lintel-voucher-key 1\nseed: " + seed + "\nkey-id: " + k.KeyID() + "\n"; string(text) != want {
		t.Fatalf("private key text:\n%s\nwant:\n%s", text, want)
	}
	k2, err := ParsePrivateKey(text)
	if err != nil || !bytes.Equal(k2.key, k.key) {
		t.Fatalf("private key round trip: %v", err)
	}
	pubText := MarshalPublicKey(k.Public())
	if want := "lintel-voucher-issuer 1\npublic-key: " + base64.StdEncoding.EncodeToString(k.Public()) + "\nkey-id: " + k.KeyID() + "\n"; string(pubText) != want {
		t.Fatalf("public key text:\n%s\nwant:\n%s", pubText, want)
	}
	pub, err := ParsePublicKey(pubText)
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	// Same layout rules as vouchers.
	if _, err := ParsePublicKey([]byte(strings.ReplaceAll("\r\n"+string(pubText), "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k := testKey(t, 7)
	seedB64 := base64.StdEncoding.EncodeToString(k.key.Seed())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		s := fmt.Sprintf(verb, k)
		if s != "voucher.PrivateKey("+k.KeyID()+")" {
			t.Errorf("%s prints %q", verb, s)
		}
	}
	if s := fmt.Sprintf("%v", struct{ K PrivateKey }{k}); strings.Contains(s, seedB64) || strings.Contains(s, "[7 7") {
		t.Errorf("nested: %s", s)
	}
}

func TestMalformedKeyFiles(t *testing.T) {
	k := testKey(t, 7)
	priv := string(MarshalPrivateKey(k))
	pub := string(MarshalPublicKey(k.Public()))
	seed := base64.StdEncoding.EncodeToString(k.key.Seed())
	other := testKey(t, 8)
	privCases := []struct{ name, text, inErr string }{
		{"empty", "", "empty"},
		{"public given", pub, "not a voucher private key file"},
		{"voucher given", string(mustIssue(k, "a", "b")), "not a voucher private key file"},
		{"version", strings.Replace(priv, "key 1", "key 9", 1), "version"},
		{"no seed", strings.Replace(priv, "seed: "+seed+"\n", "", 1), `"seed" line is missing`},
		{"no key id", strings.Replace(priv, "key-id: "+k.KeyID()+"\n", "", 1), `"key-id" line is missing`},
		{"seed short", strings.Replace(priv, seed, seed[4:], 1), "line 2: seed is not 32 bytes"},
		{"seed not base64", strings.Replace(priv, seed, "!"+seed[1:], 1), "line 2: seed is not 32 bytes"},
		{"seed alone", seed + "\n", "not a voucher private key file"},
		{"seed no colon", strings.Replace(priv, "seed: ", "seed ", 1), "line 2:"},
		{"other key's id", strings.Replace(priv, k.KeyID(), other.KeyID(), 1), "does not match the key"},
		{"extra field", priv + "comment: mine\n", `unknown field`},
		{"twice", priv + "seed: " + seed + "\n", "appears again"},
	}
	for _, c := range privCases {
		_, err := ParsePrivateKey([]byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.inErr) {
			t.Errorf("private %s: %v, want %q", c.name, err, c.inErr)
			continue
		}
		// The seed, or any long piece of it, never reaches an error message.
		if strings.Contains(err.Error(), seed[4:20]) {
			t.Errorf("private %s: error shows the seed: %v", c.name, err)
		}
	}
	pk := base64.StdEncoding.EncodeToString(k.Public())
	pubCases := []struct{ name, text, inErr string }{
		{"empty", "", "empty"},
		{"private given", priv, "not a voucher issuer public key file"},
		{"version", strings.Replace(pub, "issuer 1", "issuer 2", 1), "version"},
		{"no key", strings.Replace(pub, "public-key: "+pk+"\n", "", 1), `"public-key" line is missing`},
		{"no key id", strings.Replace(pub, "key-id: "+k.KeyID()+"\n", "", 1), `"key-id" line is missing`},
		{"short key", strings.Replace(pub, pk, pk[4:], 1), "is not 32 bytes"},
		{"other key's id", strings.Replace(pub, k.KeyID(), other.KeyID(), 1), "does not match the key"},
		{"control", strings.Replace(pub, "key-id:", "key-id:\x01", 1), "control character"},
	}
	for _, c := range pubCases {
		if _, err := ParsePublicKey([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.inErr) {
			t.Errorf("public %s: %v, want %q", c.name, err, c.inErr)
		}
	}
}
