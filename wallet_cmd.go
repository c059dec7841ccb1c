package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"lintel/wallet"
)

const walletUsage = `Usage:
  lintel wallet activate [--wallet FILE] URL
      redeem an activation link (http://HOST:PORT/activate/TOKEN): make a P-256
      key, bind it to the card on the node and store the card
  lintel wallet list [--wallet FILE]
      the cards held, one JSON object a line (never the keys)
  lintel wallet checkin [--wallet FILE] --node URL
      check in with a node over the site network: delete the cards it says to
      delete and send their signed deletion receipts
  lintel wallet present [--wallet FILE] --link HOST:PORT --reader ID [--card ID]
      present a card to a reader through its node's reader link; prints
      {"result","reason",...}; exit 0 granted, 3 denied, 1 on errors

  lintel wallet enroll [--wallet FILE] --link HOST:PORT --reader ID
      enroll at a reader an operator armed (POST /api/v1/readers/ID/enroll):
      a new key becomes a card of the armed cardholder; prints
      {"result","reason","card_id"}; exit 0 enrolled, 3 denied, 1 on errors

The wallet file (default ./wallet.json) holds the cards' private keys: it is
written with mode 0600 and refused when group or others may read it.
lintel wallet COMMAND -h lists the flags.
`

// walletCmd runs "lintel wallet ...": the phone (SPEC 7).
func walletCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, walletUsage)
		return 2
	}
	switch args[0] {
	case "activate":
		return walletActivate(args[1:], stdout, stderr)
	case "list":
		return walletList(args[1:], stdout, stderr)
	case "checkin":
		return walletCheckin(args[1:], stdout, stderr)
	case "present":
		return walletPresent(args[1:], stdout, stderr)
	case "enroll":
		return walletEnroll(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, walletUsage)
		return 0
	}
	fmt.Fprintf(stderr, "lintel wallet: unknown command %q; run 'lintel wallet -h'\n", args[0])
	return 2
}

func walletFlag(f *flag.FlagSet) *string {
	return f.String("wallet", wallet.DefaultPath, "the wallet `FILE` (mode 0600; created by the first activation)")
}

// parseWalletFlags parses args like parseSubFlags, but lets flags and up to
// maxArgs positional arguments come in any order (lintel wallet activate
// URL --wallet FILE). ok is false when the command is over, with exit code.
func parseWalletFlags(f *flag.FlagSet, synopsis string, maxArgs int, args []string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	f.SetOutput(io.Discard)
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.SetOutput(stdout)
				fmt.Fprintf(stdout, "Usage: %s\n", synopsis)
				f.PrintDefaults()
				return nil, 0, false
			}
			fmt.Fprintf(stderr, "%s: %v (see %s -h)\n", f.Name(), err, f.Name())
			return nil, 2, false
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...) // everything after -- is an argument
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) > maxArgs {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see %s -h)\n", f.Name(), pos[maxArgs], f.Name())
		return nil, 2, false
	}
	if w := f.Lookup("wallet"); w != nil && w.Value.String() == "" {
		fmt.Fprintf(stderr, "%s: --wallet is empty: give the wallet FILE (see %s -h)\n", f.Name(), f.Name())
		return nil, 2, false
	}
	return pos, 0, true
}

// printJSON writes v as one JSON line.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func walletActivate(args []string, stdout, stderr io.Writer) int {
	const name = "lintel wallet activate"
	f := flag.NewFlagSet(name, flag.ContinueOnError)
	path := walletFlag(f)
	pos, code, ok := parseWalletFlags(f, name+" [--wallet FILE] URL", 1, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) == 0 || pos[0] == "" {
		fmt.Fprintf(stderr, "%s: the activation URL is missing: the http://HOST:PORT/activate/TOKEN link from the message (see %s -h)\n", name, name)
		return 2
	}
	if _, err := wallet.ParseActivationURL(pos[0]); err != nil {
		fmt.Fprintf(stderr, "%s: URL %q: %v\n", name, pos[0], err)
		return 2
	}
	w, err := wallet.Open(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --wallet: %v\n", name, err)
		return 1
	}
	c, err := w.Activate(context.Background(), pos[0])
	if err != nil {
		var se *wallet.ServerError
		if errors.As(err, &se) {
			fmt.Fprintf(stderr, "%s: the node refused the activation: %v\n", name, err)
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
		}
		return 1
	}
	if err := printJSON(stdout, c); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func walletList(args []string, stdout, stderr io.Writer) int {
	const name = "lintel wallet list"
	f := flag.NewFlagSet(name, flag.ContinueOnError)
	path := walletFlag(f)
	if _, code, ok := parseWalletFlags(f, name+" [--wallet FILE]", 0, args, stdout, stderr); !ok {
		return code
	}
	w, err := wallet.Open(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --wallet: %v\n", name, err)
		return 1
	}
	for _, c := range w.Cards() {
		if err := printJSON(stdout, c); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	return 0
}

func walletCheckin(args []string, stdout, stderr io.Writer) int {
	const name = "lintel wallet checkin"
	f := flag.NewFlagSet(name, flag.ContinueOnError)
	path := walletFlag(f)
	node := f.String("node", "", "`URL` of a node of the site, http://HOST:PORT (required)")
	if _, code, ok := parseWalletFlags(f, name+" [--wallet FILE] --node URL", 0, args, stdout, stderr); !ok {
		return code
	}
	if *node == "" {
		fmt.Fprintf(stderr, "%s: --node is required: the URL of a node of the site, http://HOST:PORT (see %s -h)\n", name, name)
		return 2
	}
	if _, err := wallet.ParseNodeURL(*node); err != nil {
		fmt.Fprintf(stderr, "%s: --node %q: %v\n", name, *node, err)
		return 2
	}
	w, err := wallet.Open(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --wallet: %v\n", name, err)
		return 1
	}
	res, err := w.Checkin(context.Background(), *node)
	for _, r := range res {
		printJSON(stdout, r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func walletPresent(args []string, stdout, stderr io.Writer) int {
	var card *string
	return atReader("lintel wallet present", "[--card ID]", "the reader to present the card to", args, stdout, stderr,
		func(f *flag.FlagSet) {
			card = f.String("card", "", "`ID` of the card to present (default: the only card held)")
		},
		func(ctx context.Context, w *wallet.Wallet, link, readerID string) (any, bool, error) {
			res, err := w.Present(ctx, link, readerID, *card)
			return res, res.Result == "granted", err
		})
}

func walletEnroll(args []string, stdout, stderr io.Writer) int {
	return atReader("lintel wallet enroll", "", "the armed reader", args, stdout, stderr, nil,
		func(ctx context.Context, w *wallet.Wallet, link, readerID string) (any, bool, error) {
			res, err := w.Enroll(ctx, link, readerID)
			return res, res.Result == "enrolled", err
		})
}

// atReader runs a wallet command at a reader through its node's reader
// link: --link and --reader, then run; it prints run's JSON answer and
// exits 0 when run succeeded, 3 when the reader said no, 1 on errors.
func atReader(name, extraSynopsis, readerWhat string, args []string, stdout, stderr io.Writer,
	extra func(*flag.FlagSet), run func(ctx context.Context, w *wallet.Wallet, link, readerID string) (any, bool, error)) int {
	f := flag.NewFlagSet(name, flag.ContinueOnError)
	path := walletFlag(f)
	link := f.String("link", "", "`HOST:PORT` of the node's reader link (lintel serve --readers)")
	readerID := f.String("reader", "", "`ID` of "+readerWhat)
	if extra != nil {
		extra(f)
	}
	if _, code, ok := parseWalletFlags(f, strings.TrimSpace(name+" [--wallet FILE] --link HOST:PORT --reader ID "+extraSynopsis), 0, args, stdout, stderr); !ok {
		return code
	}
	if _, _, err := net.SplitHostPort(*link); err != nil {
		fmt.Fprintf(stderr, "%s: --link %q is not HOST:PORT: the node's reader link address (see %s -h)\n", name, *link, name)
		return 2
	}
	if *readerID == "" {
		fmt.Fprintf(stderr, "%s: --reader is required: the id of %s (see %s -h)\n", name, readerWhat, name)
		return 2
	}
	w, err := wallet.Open(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --wallet: %v\n", name, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*wallet.LinkTimeout)
	defer cancel()
	res, ok, err := run(ctx, w, *link, *readerID)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if err := printJSON(stdout, res); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if !ok {
		return 3
	}
	return 0
}
