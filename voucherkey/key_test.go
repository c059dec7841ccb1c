package voucherkey

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"lintel/consensus/state/voucher"
)

// testKey returns a fixed key, so failures reproduce.
func testKey(t testing.TB, b byte) voucher.PrivateKey {
	t.Helper()
	k, err := voucher.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var issuedAt = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey()
	if a.KeyID() == b.KeyID() || len(a.Public()) != ed25519.PublicKeySize {
		t.Fatal("keys are not random")
	}
	v, _ := voucher.Issue(a, "acct", "V1", 1, issuedAt)
	if err := v.Verify([]ed25519.PublicKey{a.Public()}); err != nil {
		t.Fatal(err)
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
	if err := WriteKeyFiles(filepath.Join(dir, "zero"), voucher.PrivateKey{}, false); err == nil {
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
	_, text := voucher.Issue(loaded, "acct", "V9", 77, time.Now())
	v, err := voucher.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Fatal(err)
	}
}
