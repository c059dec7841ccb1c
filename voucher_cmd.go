package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"

	"lintel/consensus/state/voucher"
	"lintel/voucherkey"
)

const voucherUsage = `Usage:
  lintel voucher keygen --out FILE [--force]
      make a credit-issuer key pair: the private key in FILE (mode 0600),
      the public key in FILE.pub (give it to lintel serve --voucher-issuer)
  lintel voucher issue --key FILE --account ID --credits N --id VOUCHER_ID [--issued TIME]
      print a signed credit voucher

lintel voucher keygen -h and lintel voucher issue -h list the flags.
`

// voucherCmd runs "lintel voucher ...": the credit issuer's tools. They run on
// the issuer's machine, not on a node.
func voucherCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, voucherUsage)
		return 2
	}
	switch args[0] {
	case "keygen":
		return voucherKeygen(args[1:], stdout, stderr)
	case "issue":
		return voucherIssue(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, voucherUsage)
		return 0
	}
	fmt.Fprintf(stderr, "lintel voucher: unknown command %q; run 'lintel voucher -h'\n", args[0])
	return 2
}

// parseSubFlags parses args as serve does: -h prints the usage on stdout;
// a bad flag or a stray argument is one line on stderr. ok is false when the
// command is over, with exit code code.
func parseSubFlags(f *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	f.SetOutput(io.Discard)
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.SetOutput(stdout)
			fmt.Fprintf(stdout, "Usage: %s\n", synopsis)
			f.PrintDefaults()
			return 0, false
		}
		fmt.Fprintf(stderr, "%s: %v (see %s -h)\n", f.Name(), err, f.Name())
		return 2, false
	}
	if f.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see %s -h)\n", f.Name(), f.Arg(0), f.Name())
		return 2, false
	}
	return 0, true
}

func voucherKeygen(args []string, stdout, stderr io.Writer) int {
	const name = "lintel voucher keygen"
	f := flag.NewFlagSet(name, flag.ContinueOnError)
	out := f.String("out", "", "write the private key to `FILE` (mode 0600) and the public key to FILE.pub")
	force := f.Bool("force", false, "replace existing key files (the old private key is lost)")
	if code, ok := parseSubFlags(f, name+" --out FILE [--force]", args, stdout, stderr); !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintf(stderr, "%s: --out is required: the file to write the private key to\n", name)
		return 2
	}
	key, err := voucherkey.GenerateKey()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if err := voucherkey.WriteKeyFiles(*out, key, *force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Replacing an issuer key by accident would strand every
			// cluster that trusts the old one.
			fmt.Fprintf(stderr, "%s: --out: %v; use --force to replace the key pair\n", name, err)
			return 2
		}
		fmt.Fprintf(stderr, "%s: --out %s: %v\n", name, *out, err)
		return 1
	}
	fmt.Fprintf(stdout, "key id:      %s\n", key.KeyID())
	fmt.Fprintf(stdout, "private key: %s (keep it secret: it mints credits)\n", *out)
	fmt.Fprintf(stdout, "public key:  %s.pub (give it to the cluster: lintel serve --voucher-issuer %s.pub)\n", *out, *out)
	return 0
}

func voucherIssue(args []string, stdout, stderr io.Writer) int {
	const name = "lintel voucher issue"
	f := flag.NewFlagSet(name, flag.ContinueOnError)
	keyPath := f.String("key", "", "the issuer's private key `FILE`, from lintel voucher keygen (mode 0600)")
	account := f.String("account", "", "`ID` of the account credited")
	credits := f.String("credits", "", fmt.Sprintf("`N` credits, 1 to %d", voucher.MaxCredits))
	id := f.String("id", "", "`VOUCHER_ID`, unique: each voucher id loads once (letters, digits, dots, dashes, underscores)")
	issued := f.String("issued", "", "issue `TIME`, RFC 3339 like 2025-06-01T09:30:00Z (default now, UTC)")
	if code, ok := parseSubFlags(f, name+" --key FILE --account ID --credits N --id VOUCHER_ID [--issued TIME]", args, stdout, stderr); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, name+": "+format+"\n", a...)
		return 2
	}
	for _, req := range []struct{ flag, v string }{{"--key", *keyPath}, {"--account", *account}, {"--credits", *credits}, {"--id", *id}} {
		if req.v == "" {
			return fail("%s is required (see %s -h)", req.flag, name)
		}
	}
	if err := voucher.CheckID(*account); err != nil {
		return fail("--account %q: %v", *account, err)
	}
	n, err := strconv.ParseInt(*credits, 10, 64)
	if err == nil {
		err = voucher.CheckCredits(n)
	}
	if err != nil {
		return fail("--credits %q: must be a whole number from 1 to %d", *credits, voucher.MaxCredits)
	}
	if err := voucher.CheckID(*id); err != nil {
		return fail("--id %q: %v", *id, err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	if *issued != "" {
		t, err := time.Parse(time.RFC3339, *issued)
		if err != nil {
			return fail("--issued %q: not an RFC 3339 time like 2025-06-01T09:30:00Z", *issued)
		}
		// A fraction of a second would be cut silently; refuse it instead.
		if err := voucher.CheckIssued(t); err != nil {
			return fail("--issued %q: %v", *issued, err)
		}
		at = t.UTC()
	}
	key, err := voucherkey.LoadPrivateKey(*keyPath)
	if err != nil {
		return fail("--key: %v", err)
	}
	_, text := voucher.Issue(key, *account, *id, n, at)
	if _, err := stdout.Write(text); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
