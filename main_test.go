package main

import (
	"bytes"
	"strings"
	"testing"
)

func runArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		inStderr string
		inStdout string
	}{
		{[]string{}, 2, "Usage", ""},
		{[]string{"help"}, 0, "", "lintel serve"},
		{[]string{"-h"}, 0, "", "lintel serve"},
		{[]string{"version"}, 0, "", "lintel dev"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{[]string{"serve", "-h"}, 0, "", "-data-dir"},
		{[]string{"serve", "--nope"}, 2, "-nope", ""},
		{[]string{"serve", "--http", "notanaddress"}, 2, "--http", ""},
		{[]string{"serve", "--raft", "1.2.3.4"}, 2, "--raft", ""},
		{[]string{"serve", "--join", "a:1,bad"}, 2, "--join", ""},
		{[]string{"serve", "--gossip-key", "c2hvcnQ="}, 2, "--gossip-key", ""},
		{[]string{"serve", "--gossip-key", "!!"}, 2, "--gossip-key", ""},
		{[]string{"serve", "--log-level", "loud"}, 2, "--log-level", ""},
		{[]string{"serve", "--admin-email", "nobody"}, 2, "--admin-email", ""},
		{[]string{"serve", "--admin-password", "short"}, 2, "--admin-password", ""},
		{[]string{"serve", "--node-id", "a b"}, 2, "--node-id", ""},
		{[]string{"serve", "--voucher-issuer", "/no/such/file"}, 2, "--voucher-issuer", ""},
		{[]string{"serve", "extra"}, 2, "unexpected argument", ""},
		{[]string{"serve", "--door", "front"}, 2, "--door", ""},
		{[]string{"serve", "--door", "front=relay:/a", "--door", "front=relay:/b"}, 2, "wired twice", ""},
		{[]string{"serve", "--door", "front=horn:/a"}, 2, "unknown output", ""},
		{[]string{"wallet"}, 2, "lintel wallet activate", ""},
		{[]string{"wallet", "present", "--link", "h:1"}, 2, "--reader is required", ""},
	}
	for _, c := range cases {
		code, out, errs := runArgs(c.args...)
		if code != c.code || !strings.Contains(errs, c.inStderr) || !strings.Contains(out, c.inStdout) {
			t.Errorf("lintel %v: exit %d (want %d)\nstdout: %s\nstderr: %s", c.args, code, c.code, out, errs)
		}
		// Errors are one line.
		if c.code == 2 && len(c.args) > 1 && strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("lintel %v: error is more than one line: %q", c.args, errs)
		}
	}
}

func TestEnvironmentDefaults(t *testing.T) {
	t.Setenv("LINTEL_HTTP", "bogus")
	code, _, errs := runArgs("serve")
	if code != 2 || !strings.Contains(errs, "--http") {
		t.Fatalf("env LINTEL_HTTP not used: %d %s", code, errs)
	}
	// A flag beats its environment variable: the bad env value is overridden.
	t.Setenv("LINTEL_LOG_LEVEL", "loud")
	// --voucher-issuer is checked after --log-level, so this error proves the level passed.
	code, _, errs = runArgs("serve", "--http", "127.0.0.1:1", "--log-level", "warn", "--voucher-issuer", "/no/such")
	if code != 2 || !strings.Contains(errs, "--voucher-issuer") {
		t.Fatalf("flag did not override env: %d %s", code, errs)
	}
}
