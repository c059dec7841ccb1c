package main

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"lintel/consensus/state/voucher"
	"lintel/voucherkey"
)

func keygen(t *testing.T, out string, extra ...string) (int, string, string) {
	t.Helper()
	return runArgs(append([]string{"voucher", "keygen", "--out", out}, extra...)...)
}

func TestVoucherKeygenThenIssue(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "issuer.key")
	code, out, errs := keygen(t, keyFile)
	if code != 0 || errs != "" {
		t.Fatalf("keygen: exit %d\n%s%s", code, out, errs)
	}
	pub, err := voucherkey.LoadPublicKey(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	keyID := voucher.KeyID(pub)
	for _, want := range []string{"key id:      " + keyID + "\n", keyFile + " ", keyFile + ".pub "} {
		if !strings.Contains(out, want) {
			t.Errorf("keygen output lacks %q:\n%s", want, out)
		}
	}
	if runtime.GOOS != "windows" {
		for file, want := range map[string]os.FileMode{keyFile: 0o600, keyFile + ".pub": 0o644} {
			st, err := os.Stat(file)
			if err != nil || st.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %04o (%v)", file, st.Mode().Perm(), want, err)
			}
		}
	}

	code, out, errs = runArgs("voucher", "issue", "--key", keyFile, "--account", "acct-1", "--credits", "500",
		"--id", "INV-1", "--issued", "2025-06-01T11:30:00+02:00")
	if code != 0 || errs != "" {
		t.Fatalf("issue: exit %d\n%s%s", code, out, errs)
	}
	v, err := voucher.Parse([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := v.Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)
	if v.Issuer != keyID || v.Account != "acct-1" || v.Credits != 500 || v.ID != "INV-1" || !v.Issued.Equal(want) {
		t.Fatalf("voucher %+v", v)
	}
	if string(v.Marshal()) != out {
		t.Fatalf("printed text is not canonical:\n%s", out)
	}

	// Without --issued: now, in UTC, whole seconds.
	before := time.Now().UTC().Truncate(time.Second)
	code, out, errs = runArgs("voucher", "issue", "--key", keyFile, "--account", "acct-1", "--credits", "1", "--id", "INV-2")
	after := time.Now().UTC()
	if code != 0 {
		t.Fatalf("issue: exit %d %s", code, errs)
	}
	v, err = voucher.Parse([]byte(out))
	if err != nil || v.Verify([]ed25519.PublicKey{pub}) != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if v.Issued.Before(before) || v.Issued.After(after) {
		t.Fatalf("issued %v, not between %v and %v", v.Issued, before, after)
	}

	// A voucher from another issuer is refused by this one's public key.
	other := filepath.Join(dir, "other.key")
	if code, _, errs := keygen(t, other); code != 0 {
		t.Fatal(errs)
	}
	_, out, _ = runArgs("voucher", "issue", "--key", other, "--account", "acct-1", "--credits", "1", "--id", "INV-3")
	if v, err := voucher.Parse([]byte(out)); err != nil || v.Verify([]ed25519.PublicKey{pub}) == nil {
		t.Fatalf("other issuer's voucher: %v", err)
	}
}

func TestVoucherKeygenRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k")
	if code, _, errs := keygen(t, keyFile); code != 0 {
		t.Fatal(errs)
	}
	first, _ := os.ReadFile(keyFile)
	firstPub, _ := os.ReadFile(keyFile + ".pub")

	code, out, errs := keygen(t, keyFile)
	if code != 2 || out != "" || !strings.Contains(errs, "--out") || !strings.Contains(errs, "--force") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("overwrite: exit %d\n%s%s", code, out, errs)
	}
	if now, _ := os.ReadFile(keyFile); string(now) != string(first) {
		t.Fatal("private key changed")
	}
	// Only the .pub exists: still refused, and no private key is written.
	lone := filepath.Join(dir, "lone")
	os.WriteFile(lone+".pub", firstPub, 0o644)
	if code, _, errs := keygen(t, lone); code != 2 || !strings.Contains(errs, "lone.pub") {
		t.Fatalf("overwrite of .pub: exit %d %s", code, errs)
	}
	if _, err := os.Stat(lone); err == nil {
		t.Fatal("private key written next to an existing .pub")
	}

	code, out, errs = keygen(t, keyFile, "--force")
	if code != 0 {
		t.Fatalf("--force: exit %d %s", code, errs)
	}
	if now, _ := os.ReadFile(keyFile); string(now) == string(first) {
		t.Fatal("--force kept the old key")
	}
	if now, _ := os.ReadFile(keyFile + ".pub"); string(now) == string(firstPub) {
		t.Fatal("--force kept the old public key")
	}
	if !strings.Contains(out, "key id:") {
		t.Fatal(out)
	}
}

func TestVoucherIssueRefusesOpenKeyFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	keyFile := filepath.Join(t.TempDir(), "k")
	if code, _, errs := keygen(t, keyFile); code != 0 {
		t.Fatal(errs)
	}
	os.Chmod(keyFile, 0o644)
	code, out, errs := runArgs("voucher", "issue", "--key", keyFile, "--account", "a", "--credits", "1", "--id", "v")
	if code != 2 || out != "" || !strings.Contains(errs, "--key") || !strings.Contains(errs, "chmod 600 "+keyFile) {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

func TestVoucherCommandLine(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k")
	if code, _, errs := keygen(t, keyFile); code != 0 {
		t.Fatal(errs)
	}
	notKey := filepath.Join(dir, "notkey")
	os.WriteFile(notKey, []byte("hello\n"), 0o600)
	issue := func(args ...string) []string {
		base := map[string]string{"--key": keyFile, "--account": "acct", "--credits": "5", "--id": "v1"}
		for i := 0; i+1 < len(args); i += 2 {
			base[args[i]] = args[i+1]
		}
		out := []string{"voucher", "issue"}
		for _, f := range []string{"--key", "--account", "--credits", "--id", "--issued"} {
			if v, ok := base[f]; ok && v != "<none>" {
				out = append(out, f, v)
			}
		}
		return out
	}
	cases := []struct {
		args     []string
		code     int
		inStderr string
		inStdout string
	}{
		{[]string{"voucher"}, 2, "lintel voucher keygen", ""},
		{[]string{"voucher", "-h"}, 0, "", "lintel voucher issue"},
		{[]string{"voucher", "help"}, 0, "", "lintel voucher keygen"},
		{[]string{"voucher", "mint"}, 2, `unknown command "mint"`, ""},
		{[]string{"voucher", "keygen", "-h"}, 0, "", "-force"},
		{[]string{"voucher", "keygen", "--help"}, 0, "", "-out"},
		{[]string{"voucher", "issue", "-h"}, 0, "", "-credits"},
		{[]string{"voucher", "keygen"}, 2, "--out is required", ""},
		{[]string{"voucher", "keygen", "--out"}, 2, "-out", ""},
		{[]string{"voucher", "keygen", "--nope"}, 2, "-nope", ""},
		{[]string{"voucher", "keygen", "--out", filepath.Join(dir, "x"), "extra"}, 2, `unexpected argument "extra"`, ""},
		{[]string{"voucher", "keygen", "--force=maybe", "--out", filepath.Join(dir, "y")}, 2, "-force", ""},
		{[]string{"voucher", "keygen", "--out", filepath.Join(dir, "no", "dir", "k")}, 1, "--out", ""},
		{[]string{"voucher", "issue", "--nope"}, 2, "-nope", ""},
		{issue("--key", "<none>"), 2, "--key is required", ""},
		{issue("--account", "<none>"), 2, "--account is required", ""},
		{issue("--credits", "<none>"), 2, "--credits is required", ""},
		{issue("--id", "<none>"), 2, "--id is required", ""},
		{issue("--account", "a b"), 2, `--account "a b"`, ""},
		{issue("--account", strings.Repeat("a", 65)), 2, "--account", ""},
		{issue("--credits", "0"), 2, `--credits "0": must be a whole number from 1 to 1000000000`, ""},
		{issue("--credits", "-3"), 2, "--credits", ""},
		{issue("--credits", "1000000001"), 2, "--credits", ""},
		{issue("--credits", "ten"), 2, "--credits", ""},
		{issue("--credits", "1.5"), 2, "--credits", ""},
		{issue("--id", "v/1"), 2, `--id "v/1"`, ""},
		{issue("--id", "v\n1"), 2, "--id", ""},
		{issue("--issued", "yesterday"), 2, `--issued "yesterday"`, ""},
		{issue("--issued", "2025-06-01"), 2, "--issued", ""},
		{issue("--issued", "2025-06-01T09:30:00.5Z"), 2, "whole second", ""},
		{issue("--key", filepath.Join(dir, "missing")), 2, "--key", ""},
		{issue("--key", notKey), 2, "--key: " + notKey + ": line 1: not a voucher private key file", ""},
		{issue("--key", keyFile+".pub"), 2, "--key", ""},
		{issue(), 0, "", "lintel-voucher 1\n"},
		{issue("--credits", "1000000000", "--issued", "2025-06-01T09:30:00Z"), 0, "", "credits: 1000000000\nissued: 2025-06-01T09:30:00Z\n"},
	}
	for _, c := range cases {
		code, out, errs := runArgs(c.args...)
		if code != c.code || !strings.Contains(errs, c.inStderr) || !strings.Contains(out, c.inStdout) {
			t.Errorf("lintel %q: exit %d (want %d)\nstdout: %s\nstderr: %s", c.args, code, c.code, out, errs)
		}
		if c.code != 0 && len(c.args) > 1 && strings.Count(errs, "\n") != 1 {
			t.Errorf("lintel %q: error is not one line: %q", c.args, errs)
		}
		if c.code != 0 && out != "" {
			t.Errorf("lintel %q: failed but printed %q", c.args, out)
		}
	}
}

func TestUsageListsVoucher(t *testing.T) {
	_, out, _ := runArgs("help")
	if !strings.Contains(out, "lintel voucher") || strings.Contains(out, "credit vouchers (not in this build yet)") {
		t.Fatalf("usage:\n%s", out)
	}
	if code, _, errs := runArgs("wallet"); code != 2 || !strings.Contains(errs, "lintel wallet present") {
		t.Fatalf("wallet: %d %s", code, errs)
	}
}
