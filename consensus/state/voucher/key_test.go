package voucher

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
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

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey()
	if a.KeyID() == b.KeyID() || len(a.Public()) != ed25519.PublicKeySize {
		t.Fatal("keys are not random")
	}
	v, _ := Issue(a, "acct", "V1", 1, issuedAt)
	if err := v.Verify([]ed25519.PublicKey{a.Public()}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKeyFromSeed(make([]byte, 31)); err == nil {
		t.Fatal("short seed accepted")
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

func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestKeyFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "issuer.key")
	k := testKey(t, 7)
	if err := WriteKeyFiles(path, k, false); err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, path); m != 0o600 {
		t.Fatalf("private key mode %04o", m)
	}
	if m := modeOf(t, path+".pub"); m != 0o644 {
		t.Fatalf("public key mode %04o", m)
	}
	got, err := LoadPrivateKey(path)
	if err != nil || got.KeyID() != k.KeyID() {
		t.Fatalf("load private: %v", err)
	}
	pub, err := LoadPublicKey(path + ".pub")
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("load public: %v", err)
	}
	// The files leave nothing behind (no temporary files).
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("dir holds %d entries", len(entries))
	}

	// No overwrite without force: of either file, and nothing is written.
	k2 := testKey(t, 8)
	if err := WriteKeyFiles(path, k2, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v", err)
	}
	if got, _ := LoadPrivateKey(path); got.KeyID() != k.KeyID() {
		t.Fatal("key replaced without force")
	}
	lone := filepath.Join(dir, "lone")
	os.WriteFile(lone+".pub", []byte("keep me"), 0o644)
	if err := WriteKeyFiles(lone, k2, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite of .pub: %v", err)
	}
	if _, err := os.Stat(lone); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("private key written although the .pub exists")
	}

	// Force replaces both, and the private key ends 0600 even if the old file was not.
	os.Chmod(path, 0o644)
	if err := WriteKeyFiles(path, k2, true); err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, path); m != 0o600 {
		t.Fatalf("forced private key mode %04o", m)
	}
	if got, err := LoadPrivateKey(path); err != nil || got.KeyID() != k2.KeyID() {
		t.Fatalf("forced: %v", err)
	}
	if pub, _ := LoadPublicKey(path + ".pub"); !pub.Equal(k2.Public()) {
		t.Fatal("forced: .pub not replaced")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Fatalf("dir holds %d entries", len(entries))
	}

	if err := WriteKeyFiles(filepath.Join(dir, "no", "such", "dir"), k, false); err == nil {
		t.Fatal("write into a missing directory")
	}
	if err := WriteKeyFiles(filepath.Join(dir, "zero"), PrivateKey{}, false); err == nil {
		t.Fatal("zero key written")
	}
}

func TestLoadPrivateKeyRefusesOpenModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	path := filepath.Join(t.TempDir(), "k")
	if err := WriteKeyFiles(path, testKey(t, 7), false); err != nil {
		t.Fatal(err)
	}
	for _, m := range []fs.FileMode{0o640, 0o604, 0o644, 0o660, 0o602, 0o610, 0o777} {
		if err := os.Chmod(path, m); err != nil {
			t.Fatal(err)
		}
		_, err := LoadPrivateKey(path)
		if !errors.Is(err, ErrKeyFileOpen) || !strings.Contains(err.Error(), "chmod 600 "+path) || !strings.Contains(err.Error(), fmt.Sprintf("%04o", m)) {
			t.Errorf("mode %04o: %v", m, err)
		}
	}
	for _, m := range []fs.FileMode{0o600, 0o400} {
		os.Chmod(path, m)
		if _, err := LoadPrivateKey(path); err != nil {
			t.Errorf("mode %04o: %v", m, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := LoadPublicKey(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := LoadPrivateKey(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("x"), 5000), 0o600)
	if _, err := LoadPrivateKey(big); err == nil || !strings.Contains(err.Error(), "larger than 4096") {
		t.Fatalf("big: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("lintel-voucher-key 1\nseed: x\nkey-id: y\n"), 0o600)
	if _, err := LoadPrivateKey(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": line 2") {
		t.Fatalf("bad: %v", err)
	}
	if _, err := LoadPublicKey(bad); err == nil || !strings.Contains(err.Error(), "not a voucher issuer public key file") {
		t.Fatalf("private as public: %v", err)
	}
}

// A key made by the public API signs vouchers the saved public key verifies.
func TestKeyFilesAndVouchers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k, _ := GenerateKey()
	if err := WriteKeyFiles(path, k, false); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := LoadPublicKey(path + ".pub")
	_, text := Issue(loaded, "acct", "V9", 77, time.Now())
	v, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Fatal(err)
	}
}
