package exchange_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader/exchange"
)

// TestDomainsAreSeparate checks against the node's own verifier that a
// signature made for one Lintel message format is refused by the other.
func TestDomainsAreSeparate(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	sign := func(msg []byte) ([]byte, error) {
		sum := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, k, sum[:])
	}
	card := state.Card{ID: "card-1", Device: &state.Device{PublicKey: der}}
	c := exchange.Challenge{Version: exchange.ProtocolVersion, ReaderID: "reader-1", SiteID: "site-1"}

	// A presentation verifies here but is no deletion receipt (nor anything
	// else) for state.VerifyDevice.
	p, err := exchange.Respond(c, card.ID, sign)
	if err != nil || exchange.Verify(p, c, der) != nil {
		t.Fatalf("presentation: %v", err)
	}
	if state.VerifyDevice(card, command.DeletionReceiptMessage(card.ID), p.Signature) {
		t.Fatal("a presentation signature passed as a deletion receipt")
	}
	// Same key, same format check: the node accepts its own message's signature.
	receipt, _ := sign(command.DeletionReceiptMessage(card.ID))
	if !state.VerifyDevice(card, command.DeletionReceiptMessage(card.ID), receipt) {
		t.Fatal("control: state.VerifyDevice refused a good receipt")
	}
	// A signature state.VerifyDevice accepts is no presentation here.
	forged := exchange.Presentation{Nonce: c.Nonce, CardID: card.ID, Signature: receipt}
	if exchange.Verify(forged, c, der) == nil {
		t.Fatal("a deletion receipt signature passed as a presentation")
	}
	// Nor is a signature over the bare nonce/ids without the domain prefix.
	raw := exchange.SignedMessage(c.Nonce, c.ReaderID, card.ID)[len(exchange.SignedDomain):]
	bare, _ := sign(raw)
	if exchange.Verify(exchange.Presentation{Nonce: c.Nonce, CardID: card.ID, Signature: bare}, c, der) == nil {
		t.Fatal("a signature without the domain prefix passed")
	}
	if !state.VerifyDevice(card, raw, bare) {
		t.Fatal("control: VerifyDevice refused its own message format")
	}
}
