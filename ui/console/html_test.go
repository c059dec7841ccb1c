package console_test

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// The helpers below query rendered HTML the way a person reads it: by element
// and visible text, not by the bytes of the markup.

func parseHTML(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// findAll returns the elements under n that match, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(x *html.Node) {
		if x.Type == html.ElementNode && match(x) {
			out = append(out, x)
		}
		for c := x.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == name }
}

func byID(n *html.Node, id string) *html.Node {
	found := findAll(n, func(x *html.Node) bool { v, ok := attr(x, "id"); return ok && v == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

// text is the visible text of n with runs of white space folded.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(x *html.Node) {
		if x.Type == html.TextNode {
			b.WriteString(x.Data)
			b.WriteByte(' ')
		}
		for c := x.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func texts(nodes []*html.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = text(n)
	}
	return out
}

// siteTable reads table#sites: its header cells and, per body row, the cells' text.
func siteTable(t *testing.T, doc *html.Node) (header []string, rows [][]string) {
	t.Helper()
	tbl := byID(doc, "sites")
	if tbl == nil {
		t.Fatal("no table#sites on the page")
	}
	header = texts(findAll(tbl, tag("th")))
	for _, body := range findAll(tbl, tag("tbody")) {
		for _, tr := range findAll(body, tag("tr")) {
			if _, ok := attr(tr, "data-site"); ok {
				rows = append(rows, texts(findAll(tr, tag("td"))))
			}
		}
	}
	return header, rows
}

// seedColumns are the columns of seed 003, figure 43, in order.
var seedColumns = []string{"Customer Site Name", "Creation Date", "Number of Configurations", "Number of Users", "Number of Configurators"}
