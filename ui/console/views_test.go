package console_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"lintel/ui/console"
)

func renderString(t *testing.T, c templ.Component) string {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	return buf.String()
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

// The seed's own rows (seed 003, figure 43).
var seedRows = []console.SiteRow{
	{ID: "annexe", Name: "Annexe", CreatedAt: at("2018-10-17 17:54:09"), Configurations: 1, Users: 1, Configurators: 0},
	{ID: "london", Name: "London", CreatedAt: at("2018-05-01 20:04:00"), Configurations: 1, Users: 6, Configurators: 1},
	{ID: "paris", Name: "Paris", CreatedAt: at("2018-05-01 15:28:59"), Configurations: 8, Users: 10, Configurators: 3},
}

func TestSiteTableColumnsAndDates(t *testing.T) {
	doc := parseHTML(t, renderString(t, console.SiteTable(seedRows, false)))
	header, rows := siteTable(t, doc)
	if !slices.Equal(header, seedColumns) {
		t.Fatalf("columns = %q, want the seed's %q", header, seedColumns)
	}
	want := [][]string{
		{"Annexe", "17-10-2018 17:54", "1", "1", "0"},
		{"London", "01-05-2018 20:04", "1", "6", "1"},
		{"Paris", "01-05-2018 15:28", "8", "10", "3"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("rows = %q, want %q", rows, want)
	}
	// The exact instant is kept for machines; the seconds are not lost.
	times := findAll(doc, tag("time"))
	if len(times) != 3 {
		t.Fatalf("%d <time> elements, want 3", len(times))
	}
	if v, _ := attr(times[0], "datetime"); v != "2018-10-17T17:54:09Z" {
		t.Errorf("datetime = %q, want 2018-10-17T17:54:09Z", v)
	}
	if n := len(findAll(doc, tag("button"))); n != 0 {
		t.Errorf("%d buttons without the delete right, want none", n)
	}
}

func TestSiteTableDeleteButtons(t *testing.T) {
	doc := parseHTML(t, renderString(t, console.SiteTable(seedRows, true)))
	forms := findAll(doc, tag("form"))
	if len(forms) != len(seedRows) {
		t.Fatalf("%d delete forms, want one per row (%d)", len(forms), len(seedRows))
	}
	for i, f := range forms {
		method, _ := attr(f, "method")
		action, _ := attr(f, "action")
		if method != "post" || action != "/sites/"+seedRows[i].ID+"/delete" {
			t.Errorf("row %d form = %s %s, want post /sites/%s/delete", i, method, action, seedRows[i].ID)
		}
		if got := text(f); got != "Delete" {
			t.Errorf("row %d button says %q, want Delete", i, got)
		}
	}
	// The seed's columns come first; the action column is extra and unlabelled on screen.
	header, _ := siteTable(t, doc)
	if !slices.Equal(header[:5], seedColumns) {
		t.Errorf("columns = %q", header)
	}
}

func TestSiteTableEmpty(t *testing.T) {
	doc := parseHTML(t, renderString(t, console.SiteTable(nil, true)))
	if got := text(byID(doc, "sites")); !strings.Contains(got, "No customer sites yet.") {
		t.Fatalf("empty table says %q", got)
	}
}

func TestSiteNamesAreEscaped(t *testing.T) {
	rows := []console.SiteRow{{ID: `x"><b id="evil`, Name: `<script>alert(1)</script> & Co`, CreatedAt: at("2024-01-02 03:04:05")}}
	out := renderString(t, console.SiteTable(rows, true))
	if strings.Contains(out, "<script>") || strings.Contains(out, `<b id="evil`) {
		t.Fatalf("markup from data reached the page:\n%s", out)
	}
	doc := parseHTML(t, out)
	if len(findAll(doc, tag("script"))) != 0 || byID(doc, "evil") != nil {
		t.Fatal("data became elements")
	}
	_, got := siteTable(t, doc)
	if got[0][0] != `<script>alert(1)</script> & Co` {
		t.Errorf("name shows as %q", got[0][0])
	}
	// The id goes into the URL path escaped.
	if action, _ := attr(findAll(doc, tag("form"))[0], "action"); !strings.HasPrefix(action, "/sites/x%22%3E%3Cb") {
		t.Errorf("action = %q", action)
	}
}

func TestSitesPageRights(t *testing.T) {
	chrome := console.Chrome{Building: "Head office", NodeID: "n1", Email: "op@example.com", Account: "Acme", Active: "sites"}
	for _, tc := range []struct {
		name                     string
		page                     console.SitesPage
		table, addForm, deleteOK bool
	}{
		{"all rights", console.SitesPage{Chrome: chrome, CanView: true, CanCreate: true, CanDelete: true, Rows: seedRows}, true, true, true},
		{"view only", console.SitesPage{Chrome: chrome, CanView: true, Rows: seedRows}, true, false, false},
		{"no view", console.SitesPage{Chrome: chrome}, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := parseHTML(t, renderString(t, console.Sites(tc.page)))
			if got := byID(doc, "sites") != nil; got != tc.table {
				t.Errorf("table shown = %v, want %v", got, tc.table)
			}
			add := findAll(doc, func(n *html.Node) bool {
				a, _ := attr(n, "action")
				m, _ := attr(n, "method")
				return n.Data == "form" && a == "/sites" && m == "post"
			})
			if got := len(add) == 1; got != tc.addForm {
				t.Errorf("add form shown = %v, want %v", got, tc.addForm)
			}
			del := findAll(doc, func(n *html.Node) bool { a, _ := attr(n, "action"); return strings.HasSuffix(a, "/delete") })
			if got := len(del) > 0; got != tc.deleteOK {
				t.Errorf("delete buttons shown = %v, want %v", got, tc.deleteOK)
			}
			for id, want := range map[string]string{"building": "Head office", "node": "node n1", "operator": "op@example.com", "account": "Acme"} {
				if got := text(byID(doc, id)); got != want {
					t.Errorf("#%s = %q, want %q", id, got, want)
				}
			}
		})
	}
}

func TestSitesPageShowsErrorAndKeepsName(t *testing.T) {
	page := console.SitesPage{CanView: true, CanCreate: true, Error: `A site named "Paris" already exists.`, Name: "Paris"}
	doc := parseHTML(t, renderString(t, console.Sites(page)))
	if got := text(byID(doc, "error")); got != page.Error {
		t.Errorf("error = %q, want %q", got, page.Error)
	}
	if v, _ := attr(byID(doc, "name"), "value"); v != "Paris" {
		t.Errorf("name input value = %q, want the typed name", v)
	}
}

func TestLoginPage(t *testing.T) {
	doc := parseHTML(t, renderString(t, console.Login(console.LoginPage{Building: "Head office", NodeID: "n1", Email: "a@b.c", Error: "The email or the password is wrong."})))
	if got := text(findAll(doc, tag("title"))[0]); !strings.Contains(got, "Head office") {
		t.Errorf("title %q does not name the building", got)
	}
	if got := text(byID(doc, "error")); got != "The email or the password is wrong." {
		t.Errorf("error = %q", got)
	}
	if v, _ := attr(byID(doc, "email"), "value"); v != "a@b.c" {
		t.Errorf("email kept = %q", v)
	}
	pw := byID(doc, "password")
	if typ, _ := attr(pw, "type"); typ != "password" {
		t.Errorf("password input type = %q", typ)
	}
	if _, has := attr(pw, "value"); has {
		t.Error("the password field must never be filled in by the server")
	}
	form := findAll(doc, tag("form"))[0]
	if m, _ := attr(form, "method"); m != "post" {
		t.Errorf("login form method = %q, want post (a GET would put the password in the URL)", m)
	}
}

func TestNodeTableMarksLeader(t *testing.T) {
	now := at("2024-03-01 10:00:30")
	contact := at("2024-03-01 10:00:00")
	nodes := []console.NodeRow{
		{ID: "a", Building: "North", Suffrage: "voter", RaftState: "leader", GossipState: "alive", AppliedIndex: 42, LastContact: &now, Leader: true, Self: true},
		{ID: "b", Building: "South", Suffrage: "nonvoter", RaftState: "follower", GossipState: "suspect", AppliedIndex: 41, LastContact: &contact},
		{ID: "c", Building: "", Suffrage: "voter", RaftState: "unknown", GossipState: "dead"},
	}
	doc := parseHTML(t, renderString(t, console.NodeTable(nodes, now)))
	header := texts(findAll(doc, tag("th")))
	wantHeader := []string{"Node", "Building", "Suffrage", "Raft state", "Gossip state", "Applied index", "Last contact"}
	if !slices.Equal(header, wantHeader) {
		t.Fatalf("header = %q", header)
	}
	var rows [][]string
	var leaders []string
	for _, tr := range findAll(doc, tag("tr")) {
		id, ok := attr(tr, "data-node")
		if !ok {
			continue
		}
		rows = append(rows, texts(findAll(tr, tag("td"))))
		if class, _ := attr(tr, "class"); strings.Contains(class, "leader") {
			leaders = append(leaders, id)
		}
	}
	want := [][]string{
		{"a Leader this node", "North", "Voter", "Leader", "Alive", "42", "just now"},
		{"b", "South", "Non-voter", "Follower", "Suspect", "41", "30 s ago"},
		{"c", "", "Voter", "Unknown", "Dead", "0", "never"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("rows = %q, want %q", rows, want)
	}
	if !slices.Equal(leaders, []string{"a"}) {
		t.Errorf("rows marked leader = %q, want [a]", leaders)
	}
}
