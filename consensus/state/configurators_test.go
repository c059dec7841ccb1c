package state

import (
	"testing"

	"lintel/consensus/command"
)

// Seed 003, "Sending a virtual configuration card" and the sections after it.
func TestConfigurationCards(t *testing.T) {
	r := newRegistry(t, 10)
	r.must(&command.CreateConfigurator{ID: "paul", AccountID: "acc", SiteID: "site", FirstName: "Paul", LastName: "Durand", Email: "paul@stid.com"})
	r.refuse(&command.CreateConfigurator{ID: "p2", AccountID: "acc", SiteID: "site", FirstName: "P", LastName: "D", Email: "PAUL@stid.com"}, "duplicate_email")
	r.must(&command.CreateConfigCard{ID: "cc", AccountID: "acc", ConfiguratorID: "paul", ReaderConfig: "London"})
	r.refuse(&command.CreateConfigCard{ID: "cc2", AccountID: "acc", ConfiguratorID: "paul", ReaderConfig: "London"}, "duplicate_card")
	r.must(&command.CreateConfigCard{ID: "cc3", AccountID: "acc", ConfiguratorID: "paul", ReaderConfig: "Paris"})
	if u := r.s.SiteUsage("site"); u.Configurators != 1 || u.Users != 0 || u.Configurations != 2 {
		t.Fatalf("site usage: %+v", u)
	}
	// Free: sending reserves nothing, activating debits nothing.
	link := r.send("cc")
	if l := r.ledger(); l.Reserved != 0 || r.status("cc") != CardSent {
		t.Fatalf("sent: %s %+v", r.status("cc"), l)
	}
	p := newPhone(t)
	r.must(&command.ActivateCard{LinkHash: link, DeviceKey: p.public()})
	if l := r.ledger(); l.Used != 0 || l.Balance != 10 || r.status("cc") != CardActivated {
		t.Fatalf("activated: %s %+v", r.status("cc"), l)
	}
	r.refuse(&command.MarkLost{ID: "cc", AccountID: "acc"}, "invalid_kind")
	r.refuse(&command.UpdateCard{ID: "cc", AccountID: "acc"}, "invalid_kind")
	// Revocation of a configuration card, confirmed by the configurator's phone; then resent.
	r.must(&command.RevokeCard{ID: "cc", AccountID: "acc"})
	r.must(&command.ConfirmRevoke{CardID: "cc", Signature: p.sign(command.DeletionReceiptMessage("cc"))})
	if r.status("cc") != CardRevoked {
		t.Fatal("not revoked")
	}
	r.send("cc")
	// A configurator holding configuration cards cannot be deleted; the cards can, whatever their status.
	r.refuse(&command.DeleteConfigurator{ID: "paul", AccountID: "acc"}, "configurator_in_use")
	r.must(&command.DeleteCard{ID: "cc", AccountID: "acc"})
	r.must(&command.DeleteCard{ID: "cc3", AccountID: "acc"})
	// The email cannot change; names can, and the cards follow.
	name := "Paulo"
	r.must(&command.UpdateConfigurator{ID: "paul", AccountID: "acc", FirstName: &name})
	r.must(&command.DeleteConfigurator{ID: "paul", AccountID: "acc"})
	if u := r.s.SiteUsage("site"); u.Configurators != 0 {
		t.Fatalf("site usage after delete: %+v", u)
	}
}

func TestCardholderUpdateAndDelete(t *testing.T) {
	r := newRegistry(t, 100)
	r.newCard("a", "1")
	p := newPhone(t)
	r.must(&command.ActivateCard{LinkHash: r.send("a"), DeviceKey: p.public()})
	r.must(&command.CreateCard{ID: "b", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "Paris", PrivateID: "2", CardholderID: "h-a"})
	r.send("b")
	email := "new@example.com"
	r.must(&command.UpdateCardholder{ID: "h-a", AccountID: "acc", Email: &email})
	bad := "nope"
	r.refuse(&command.UpdateCardholder{ID: "h-a", AccountID: "acc", Email: &bad}, "invalid_value")
	// Deleting the person deletes the cards by the card rules.
	r.must(&command.DeleteCardholder{ID: "h-a", AccountID: "acc"})
	if l := r.ledger(); r.s.Cards.Len() != 0 || l.Reserved != 0 || l.Lost != 5 || l.Balance != 95 {
		t.Fatalf("after deleting the cardholder: %d cards, %+v", r.s.Cards.Len(), l)
	}
	r.refuse(&command.DeleteCardholder{ID: "h-a", AccountID: "acc"}, "cardholder_not_found")
}

func TestTemplates(t *testing.T) {
	r := newRegistry(t, 0)
	r.refuse(&command.SetTemplate{AccountID: "acc", Kind: "card_activation", Subject: "Hi", Body: "no link here"}, "invalid_value")
	r.refuse(&command.SetTemplate{AccountID: "acc", Kind: "birthday", Subject: "Hi", Body: "{link}"}, "invalid_value")
	r.refuse(&command.SetTemplate{AccountID: "acc", Kind: "card_activation", Subject: "two\nlines", Body: "{link}"}, "invalid_value")
	r.must(&command.SetTemplate{AccountID: "acc", Kind: "card_activation", Subject: "Votre badge", Body: "Bonjour {first_name}, {link}"})
	if tp, ok := r.s.TemplateOf("acc", "card_activation"); !ok || tp.Subject != "Votre badge" {
		t.Fatalf("template: %+v", tp)
	}
	r.must(&command.SetTemplate{AccountID: "acc", Kind: "card_activation"})
	if _, ok := r.s.TemplateOf("acc", "card_activation"); ok {
		t.Fatal("empty template did not restore the default")
	}
}
