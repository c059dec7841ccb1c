package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lintel/wallet/wallettest"
)

func TestWalletCommandLine(t *testing.T) {
	dir := t.TempDir()
	wf := filepath.Join(dir, "wallet.json")
	cases := []struct {
		args     []string
		code     int
		inStderr string
		inStdout string
	}{
		{[]string{"wallet"}, 2, "lintel wallet activate", ""},
		{[]string{"wallet", "-h"}, 0, "", "lintel wallet checkin"},
		{[]string{"wallet", "help"}, 0, "", "--link HOST:PORT --reader ID [--card ID]"},
		{[]string{"wallet", "frob"}, 2, `unknown command "frob"`, ""},
		{[]string{"wallet", "activate", "-h"}, 0, "", "-wallet FILE"},
		{[]string{"wallet", "activate"}, 2, "activation URL is missing", ""},
		{[]string{"wallet", "activate", "--wallet", wf}, 2, "activation URL is missing", ""},
		{[]string{"wallet", "activate", "http://h:1/nope/x"}, 2, "not an activation link", ""},
		{[]string{"wallet", "activate", "--nope", "http://h:1/activate/x"}, 2, "-nope", ""},
		{[]string{"wallet", "activate", "http://h:1/activate/x", "extra"}, 2, `unexpected argument "extra"`, ""},
		{[]string{"wallet", "activate", "http://h:1/activate/x", "--wallet"}, 2, "-wallet", ""},
		{[]string{"wallet", "list", "-h"}, 0, "", "-wallet FILE"},
		{[]string{"wallet", "list", "extra"}, 2, `unexpected argument "extra"`, ""},
		{[]string{"wallet", "list", "--wallet"}, 2, "-wallet", ""},
		{[]string{"wallet", "list", "--wallet", ""}, 2, "--wallet is empty", ""},
		{[]string{"wallet", "present", "--wallet="}, 2, "--wallet is empty", ""},
		{[]string{"wallet", "list", "--wallet", filepath.Join(dir, "none.json")}, 0, "", ""},
		{[]string{"wallet", "checkin", "-h"}, 0, "", "-node URL"},
		{[]string{"wallet", "checkin", "--wallet", wf}, 2, "--node is required", ""},
		{[]string{"wallet", "checkin", "--node", "h:1"}, 2, "--node", ""},
		{[]string{"wallet", "checkin", "--node", "http://h:1", "--bogus"}, 2, "-bogus", ""},
		{[]string{"wallet", "present", "-h"}, 0, "", "-reader ID"},
		{[]string{"wallet", "present", "--link", "127.0.0.1:7100"}, 2, "--reader is required", ""},
		{[]string{"wallet", "present", "--link", "nohost", "--reader", "r1"}, 2, "--link", ""},
		{[]string{"wallet", "present", "--wallet", filepath.Join(dir, "none.json"), "--link", "127.0.0.1:7100", "--reader", "r1"}, 1, "no card", ""},
		{[]string{"wallet", "present", "--door", "d1"}, 2, "-door", ""},
		{[]string{"wallet", "enroll", "-h"}, 0, "", "-reader ID"},
		{[]string{"wallet", "enroll", "--link", "127.0.0.1:7100"}, 2, "--reader is required", ""},
		{[]string{"wallet", "enroll", "--link", "nohost", "--reader", "r1"}, 2, "--link", ""},
		{[]string{"wallet", "enroll", "--wallet", wf, "--link", "127.0.0.1:1", "--reader", "r1"}, 1, "127.0.0.1:1", ""},
	}
	for _, c := range cases {
		code, out, errs := runArgs(c.args...)
		if code != c.code || !strings.Contains(errs, c.inStderr) || !strings.Contains(out, c.inStdout) {
			t.Errorf("lintel %v: exit %d (want %d)\nstdout: %s\nstderr: %s", c.args, code, c.code, out, errs)
		}
		if code != 0 && len(c.args) > 1 && strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("lintel %v: error is more than one line: %q", c.args, errs)
		}
		if code == 2 && c.inStdout == "" && out != "" {
			t.Errorf("lintel %v: printed on stdout: %q", c.args, out)
		}
	}
	if _, err := os.Stat(wf); err == nil {
		t.Error("a refused command created the wallet file")
	}
	for _, sub := range []string{"activate", "list", "checkin", "present", "enroll"} {
		if _, out, _ := runArgs("wallet", sub, "-h"); !strings.Contains(out, "-wallet FILE") || !strings.Contains(out, "lintel wallet "+sub) {
			t.Errorf("lintel wallet %s -h: %q", sub, out)
		}
	}
}

func TestWalletCommandErrors(t *testing.T) {
	dir := t.TempDir()
	wf := filepath.Join(dir, "wallet.json")

	// A node that is not there: exit 1 and say so, without the token.
	srv := httptest.NewServer(nil)
	addr := srv.URL
	srv.Close()
	code, out, errs := runArgs("wallet", "activate", "--wallet", wf, addr+"/activate/SECRET")
	if code != 1 || out != "" || !strings.Contains(errs, "cannot reach the node at "+addr) || strings.Contains(errs, "SECRET") ||
		strings.Contains(errs, "may be activated") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Fatalf("unreachable node: %d %q %q", code, out, errs)
	}
	if code, list, _ := runArgs("wallet", "list", "--wallet", wf); code != 0 || list != "" {
		t.Fatalf("list after a failed activation: %d %q", code, list)
	}

	// A wallet file others may read is refused by every command.
	if err := os.WriteFile(wf, []byte(`{"version":1,"cards":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(wf, 0o644)
	for _, args := range [][]string{
		{"wallet", "list", "--wallet", wf},
		{"wallet", "checkin", "--wallet", wf, "--node", "http://127.0.0.1:1"},
		{"wallet", "activate", "--wallet", wf, "http://127.0.0.1:1/activate/x"},
	} {
		code, _, errs := runArgs(args...)
		if code != 1 || !strings.Contains(errs, "chmod 600 "+wf) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("lintel %v with a 0644 wallet: %d %q", args, code, errs)
		}
	}
}

// TestWalletCommandsAgainstNode activates, lists and checks in through the
// command against a real node.
func TestWalletCommandsAgainstNode(t *testing.T) {
	s := wallettest.Setup(t, "m1")
	cardID, link := s.IssueCard(t, "Ada", "Lovelace", "1234")
	wf := filepath.Join(t.TempDir(), "wallet.json")

	code, out, errs := runArgs("wallet", "activate", link, "--wallet", wf)
	if code != 0 || errs != "" || strings.Count(out, "\n") != 1 {
		t.Fatalf("activate: %d %q %q", code, out, errs)
	}
	var card map[string]any
	if err := json.Unmarshal([]byte(out), &card); err != nil {
		t.Fatal(err)
	}
	if card["card_id"] != cardID || card["status"] != "activated" || card["site"] != "Headquarters" ||
		card["reader_config"] != "London" || card["private_id"] != "1234" || card["node_url"] != s.URL || card["activated_at"] == nil {
		t.Fatalf("activate printed %v", card)
	}
	if strings.Contains(out, "private_key") {
		t.Fatal("activate printed the private key")
	}
	if st, err := os.Stat(wf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("wallet file: %v %v", st, err)
	}
	if c := s.Card(t, cardID); c.Status != "activated" {
		t.Fatalf("card on the node: %+v", c)
	}
	if cr := s.Credits(t); cr.Used != 5 {
		t.Fatalf("credits: %+v", cr)
	}

	code, list, errs := runArgs("wallet", "list", "--wallet", wf)
	if code != 0 || errs != "" || list != out {
		t.Fatalf("list: %d %q %q, want %q", code, list, errs, out)
	}

	// The link is used: exit 1 with the node's reason on one line.
	code, out, errs = runArgs("wallet", "activate", "--wallet", wf, link)
	if code != 1 || out != "" || !strings.Contains(errs, "already used") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Fatalf("second activate: %d %q %q", code, out, errs)
	}

	code, out, errs = runArgs("wallet", "checkin", "--wallet", wf, "--node", s.URL)
	if code != 0 || errs != "" || out != `{"card_id":"`+cardID+`","status":"activated","action":"kept"}`+"\n" {
		t.Fatalf("checkin: %d %q %q", code, out, errs)
	}

	s.Do(t, "POST", "/api/v1/cards/"+cardID+"/revoke", "", 200, nil)
	code, out, errs = runArgs("wallet", "checkin", "--node", s.URL, "--wallet", wf)
	if code != 0 || errs != "" || out != `{"card_id":"`+cardID+`","status":"revoked","action":"deleted","receipt":"confirmed"}`+"\n" {
		t.Fatalf("checkin after revoke: %d %q %q", code, out, errs)
	}
	if c := s.Card(t, cardID); c.Status != "revoked" {
		t.Fatalf("card on the node: %+v", c)
	}
	if cr := s.Credits(t); cr.Refunded != 5 {
		t.Fatalf("credits: %+v", cr)
	}
	if code, list, _ := runArgs("wallet", "list", "--wallet", wf); code != 0 || list != "" {
		t.Fatalf("list after the deletion: %d %q", code, list)
	}
}
