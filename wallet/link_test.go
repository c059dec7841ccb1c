package wallet

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"lintel/reader/exchange"
	"lintel/wallet/wallettest"
)

// rogueReader answers any presentation with the given verdict maker: a fake
// reader on the site network that is not the cluster's.
func rogueReader(t *testing.T, verdict func(ch exchange.Challenge, p exchange.Presentation) exchange.Verdict) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				ch := exchange.Challenge{Version: exchange.ProtocolVersion, ReaderID: strings.TrimSpace(strings.TrimPrefix(line, "lintel-link 1 ")), SiteID: "s"}
				rand.Read(ch.Nonce[:])
				f, _ := exchange.Encode(&ch)
				exchange.WriteFrame(c, f)
				var p exchange.Presentation
				if readInto(r, &p) != nil {
					return
				}
				v := verdict(ch, p)
				f, _ = exchange.Encode(&v)
				exchange.WriteFrame(c, f)
				var rc exchange.Receipt
				readInto(r, &rc)
			}()
		}
	}()
	return ln.Addr().String()
}

// A reader that is not the cluster's cannot make the phone destroy a card:
// an unsigned or wrongly signed delete instruction is ignored.
func TestRogueReaderCannotDeleteACard(t *testing.T) {
	s := wallettest.Setup(t, "wr")
	ctx := t.Context()
	w, err := Open(filepath.Join(t.TempDir(), "wallet.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, link := s.IssueCard(t, "Ada", "Lovelace", "1234")
	c, err := w.Activate(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.VerdictKey) != ed25519.PublicKeySize {
		t.Fatalf("the activation gave no verdict key: %x", c.VerdictKey)
	}
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	for name, sign := range map[string]func(exchange.Verdict, string, string) exchange.Verdict{
		"unsigned": func(v exchange.Verdict, _, _ string) exchange.Verdict { return v },
		"forged": func(v exchange.Verdict, r, card string) exchange.Verdict {
			return exchange.SignVerdict(v, r, card, forger)
		},
	} {
		addr := rogueReader(t, func(ch exchange.Challenge, p exchange.Presentation) exchange.Verdict {
			return sign(exchange.Verdict{Reason: exchange.ReasonRevoked, Delete: true, Nonce: ch.Nonce}, ch.ReaderID, p.CardID)
		})
		res, err := w.Present(ctx, addr, "front", "")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Deleted || res.Ignored == "" || len(w.Cards()) != 1 {
			t.Fatalf("%s delete instruction: %+v, cards %d", name, res, len(w.Cards()))
		}
	}
}
