package state

import (
	"fmt"
	"slices"
	"testing"

	"lintel/consensus/command"
)

func listed(s *State, config bool, status, after string) []string {
	var ids []string
	for c := range s.SiteCards("site", config, status, after) {
		ids = append(ids, c.ID)
	}
	return ids
}

// A site's card list comes from an index: in list order (last name, first
// name, id), a page after a cursor, one status, user cards apart from
// configuration cards, and it follows every change of name, status or site.
func TestSiteCardsFollowsTheIndex(t *testing.T) {
	r := newRegistry(t, 100)
	r.must(&command.CreateSite{ID: "other", AccountID: "acc", Name: "Paris"})
	for i, name := range []string{"Wood", "Adams", "Moreau", "Adams"} {
		id := fmt.Sprint("c", i)
		r.must(&command.CreateCard{ID: id, SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: fmt.Sprint(100 + i),
			NewCardholder: &command.CreateCardholder{ID: "h" + id, AccountID: "acc", FirstName: fmt.Sprint("F", 3-i), LastName: name, Email: id + "@example.com"}})
	}
	r.must(&command.CreateCard{ID: "x", SiteID: "other", AccountID: "acc", Kind: KindDeviceID,
		NewCardholder: &command.CreateCardholder{ID: "hx", AccountID: "acc", FirstName: "A", LastName: "Aaron", Email: "x@example.com"}})
	r.must(&command.CreateConfigurator{ID: "cf", AccountID: "acc", SiteID: "site", FirstName: "Con", LastName: "Figurator", Email: "cf@example.com"})
	r.must(&command.CreateConfigCard{ID: "cfg", AccountID: "acc", ConfiguratorID: "cf", ReaderConfig: "London"})

	if got, want := listed(r.s, false, "", ""), []string{"c3", "c1", "c2", "c0"}; !slices.Equal(got, want) {
		t.Fatalf("list order %v, want %v (Adams F0, Adams F2, Moreau, Wood)", got, want)
	}
	c1 := r.s.Cards.At("c1")
	if got, want := listed(r.s, false, "", CardCursor(&c1)), []string{"c2", "c0"}; !slices.Equal(got, want) {
		t.Fatalf("after c1: %v, want %v", got, want)
	}
	if got := listed(r.s, true, "", ""); !slices.Equal(got, []string{"cfg"}) {
		t.Fatalf("configuration cards %v, want [cfg]", got)
	}
	r.send("c2")
	r.must(&command.UpdateCard{ID: "c0", AccountID: "acc", LastName: new("Abbott")})
	if got, want := listed(r.s, false, CardSent, ""), []string{"c2"}; !slices.Equal(got, want) {
		t.Fatalf("sent cards %v, want %v", got, want)
	}
	if got, want := listed(r.s, false, CardCreated, ""), []string{"c0", "c3", "c1"}; !slices.Equal(got, want) {
		t.Fatalf("created cards after the rename %v, want %v", got, want)
	}
	r.must(&command.DeleteCard{ID: "c3", AccountID: "acc"})
	if got, want := listed(r.s, false, "", ""), []string{"c0", "c1", "c2"}; !slices.Equal(got, want) {
		t.Fatalf("after the delete %v, want %v", got, want)
	}
	// A refused command leaves the index as it was (it applies to a copy).
	before := listed(r.s, false, "", "")
	r.refuse(&command.ImportCards{Cards: []command.CreateCard{
		{ID: "n1", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "900",
			NewCardholder: &command.CreateCardholder{ID: "hn1", AccountID: "acc", FirstName: "A", LastName: "Aardvark", Email: "n1@example.com"}},
		{ID: "n2", SiteID: "site", AccountID: "acc", Kind: KindPrivateID, ReaderConfig: "London", PrivateID: "900",
			NewCardholder: &command.CreateCardholder{ID: "hn2", AccountID: "acc", FirstName: "A", LastName: "Aardvark", Email: "n2@example.com"}},
	}}, "duplicate_private_id")
	if got := listed(r.s, false, "", ""); !slices.Equal(got, before) || r.s.Cards.Has("n1") || r.s.Cardholders.Has("hn1") || r.s.privateIDs.At(privateIDKey("site", "London", "900")) != 0 {
		t.Fatalf("a refused import left a row behind: list %v, card n1 %v", got, r.s.Cards.Has("n1"))
	}
}

// An earlier version stays as it was when later commands change the state:
// what a reader, a snapshot or an import check holds.
func TestVersionsAreImmutable(t *testing.T) {
	r := newRegistry(t, 100)
	r.newCard("c1", "101")
	old := r.s.Clone()
	oldBytes := encode(t, old)
	r.send("c1")
	r.must(&command.UpdateCard{ID: "c1", AccountID: "acc", Phone: new("+44 20 7946 0000")})
	r.must(&command.CreateSite{ID: "s2", AccountID: "acc", Name: "Paris"})
	r.newCard("c2", "102")
	if got := encode(t, old); string(got) != string(oldBytes) {
		t.Fatal("later applies changed an earlier version")
	}
	if old.Cards.At("c1").Status != CardCreated || old.Cards.Has("c2") || old.Sites.Has("s2") {
		t.Fatal("an earlier version sees later changes")
	}
}
