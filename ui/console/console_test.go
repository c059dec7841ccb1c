package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"lintel/node"
	"lintel/ui/api"
)

// startNode runs a real single-node cluster and returns its base URL once ready.
func startNode(t *testing.T) string {
	t.Helper()
	n, err := node.Start(node.Config{
		DataDir: t.TempDir(), NodeID: "t1", Building: "Test building",
		HTTP: "127.0.0.1:0", Raft: "127.0.0.1:0", Gossip: "127.0.0.1:0", Readers: "127.0.0.1:0",
		AdminEmail: "admin@lintel.local", AdminPassword: "secret-pass", LogLevel: "warn", LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Stop() })
	base := "http://" + n.Addr()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready after 30s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// browser is a cookie-keeping client that does not follow redirects, so each
// step's status and Location can be checked.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{
		Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), header: resp.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

// post sends a form as a browser on the same origin would.
func (b *browser) post(path string, form url.Values, header ...string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

func (b *browser) cookie() *http.Cookie {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == api.SessionCookie {
			return c
		}
	}
	return nil
}

func expectRedirect(t *testing.T, p page, to string) {
	t.Helper()
	if p.status != http.StatusSeeOther || p.location != to {
		t.Fatalf("got %d Location %q, want 303 to %s\n%s", p.status, p.location, to, p.body)
	}
}

func (b *browser) login() {
	b.t.Helper()
	expectRedirect(b.t, b.post("/login", url.Values{"email": {"admin@lintel.local"}, "password": {"secret-pass"}}), "/")
}

// siteIDs maps the names in the dashboard's site list to their ids.
func siteIDs(t *testing.T, body string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, tr := range findAll(byID(parseHTML(t, body), "sites"), tag("tr")) {
		if id, ok := attr(tr, "data-site"); ok {
			ids[text(findAll(tr, tag("td"))[0])] = id
		}
	}
	return ids
}

// needSite skips a step whose site an earlier step failed to add.
func needSite(t *testing.T, id string) {
	t.Helper()
	if id == "" {
		t.Skip("the site was not added; see the add sites step")
	}
}

func TestConsole(t *testing.T) {
	base := startNode(t)
	b := newBrowser(t, base)

	t.Run("not logged in goes to the login page", func(t *testing.T) {
		expectRedirect(t, b.get("/"), "/login")
		expectRedirect(t, b.get("/cluster"), "/login")
		expectRedirect(t, b.post("/sites", url.Values{"name": {"Sneaky"}}), "/login")
	})

	t.Run("login page", func(t *testing.T) {
		p := b.get("/login")
		if p.status != http.StatusOK {
			t.Fatalf("GET /login = %d", p.status)
		}
		doc := parseHTML(t, p.body)
		if got := text(findAll(doc, tag("title"))[0]); !strings.Contains(got, "Test building") {
			t.Errorf("title %q does not name the building", got)
		}
		if byID(doc, "email") == nil || byID(doc, "password") == nil {
			t.Error("the form has no email or password field")
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})

	t.Run("wrong password shows an error and sets no cookie", func(t *testing.T) {
		p := b.post("/login", url.Values{"email": {"admin@lintel.local"}, "password": {"wrong"}})
		if p.status != http.StatusUnauthorized {
			t.Fatalf("status = %d, want 401", p.status)
		}
		doc := parseHTML(t, p.body)
		if got := text(byID(doc, "error")); got != "The email or the password is wrong." {
			t.Errorf("error = %q", got)
		}
		if v, _ := attr(byID(doc, "email"), "value"); v != "admin@lintel.local" {
			t.Errorf("the typed email was not kept: %q", v)
		}
		if strings.Contains(p.body, "wrong\"") || p.header.Get("Set-Cookie") != "" || b.cookie() != nil {
			t.Error("a failed login echoed the password or set a cookie")
		}
	})

	t.Run("right password opens the dashboard", func(t *testing.T) {
		b.login()
		if b.cookie() == nil {
			t.Fatal("no session cookie after login")
		}
		expectRedirect(t, b.get("/login"), "/") // already logged in
		p := b.get("/sites")
		if p.status != http.StatusOK {
			t.Fatalf("GET / = %d", p.status)
		}
		doc := parseHTML(t, p.body)
		for id, want := range map[string]string{
			"building": "Test building", "node": "node t1", "operator": "admin@lintel.local", "account": "Test building",
		} {
			if got := text(byID(doc, id)); got != want {
				t.Errorf("#%s = %q, want %q", id, got, want)
			}
		}
		header, rows := siteTable(t, doc)
		if !slices.Equal(header[:5], seedColumns) || len(rows) != 0 {
			t.Errorf("columns %q, rows %q; want the seed's columns and no rows", header, rows)
		}
		if cc := p.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", cc)
		}
	})

	var parisID string
	t.Run("add sites", func(t *testing.T) {
		before := time.Now()
		for _, name := range []string{"STid Headquarters", "Paris", "Site principal"} {
			expectRedirect(t, b.post("/sites", url.Values{"name": {"  " + name + " "}}), "/sites")
		}
		p := b.get("/sites")
		_, rows := siteTable(t, parseHTML(t, p.body))
		// The seed orders by name regardless of case: "Site" before "STid".
		var names []string
		for _, r := range rows {
			names = append(names, r[0])
		}
		if want := []string{"Paris", "Site principal", "STid Headquarters"}; !slices.Equal(names, want) {
			t.Fatalf("names = %q, want %q", names, want)
		}
		paris := rows[0]
		created, err := time.ParseInLocation("02-01-2006 15:04", paris[1], time.Local)
		if err != nil || created.Before(before.Truncate(time.Minute)) || created.After(time.Now()) {
			t.Errorf("Creation Date %q (%v) is not dd-mm-yyyy hh:mm of now", paris[1], err)
		}
		if !slices.Equal(paris[2:5], []string{"0", "0", "0"}) {
			t.Errorf("counts = %q, want 0 0 0 for a new site", paris[2:5])
		}
		parisID = siteIDs(t, p.body)["Paris"]
		if parisID == "" {
			t.Fatal("no id for Paris")
		}
		if got := text(byID(parseHTML(t, p.body), "count")); got != "3 customer sites" {
			t.Errorf("count line = %q", got)
		}
	})

	t.Run("duplicate name is refused in words", func(t *testing.T) {
		p := b.post("/sites", url.Values{"name": {"paris"}})
		if p.status != http.StatusConflict {
			t.Fatalf("status = %d, want 409", p.status)
		}
		doc := parseHTML(t, p.body)
		if got := text(byID(doc, "error")); !strings.Contains(got, `A site named "paris" already exists`) {
			t.Errorf("error = %q", got)
		}
		if v, _ := attr(byID(doc, "name"), "value"); v != "paris" {
			t.Errorf("typed name not kept: %q", v)
		}
		if _, rows := siteTable(t, doc); len(rows) != 3 {
			t.Errorf("%d rows after a refused add, want 3", len(rows))
		}
	})

	t.Run("empty name is refused", func(t *testing.T) {
		p := b.post("/sites", url.Values{"name": {"   "}})
		if p.status != http.StatusBadRequest || text(byID(parseHTML(t, p.body), "error")) != "Enter a Customer Site Name." {
			t.Fatalf("status %d, error %q", p.status, text(byID(parseHTML(t, p.body), "error")))
		}
	})

	t.Run("cross-origin form posts are refused", func(t *testing.T) {
		needSite(t, parisID)
		for _, h := range [][]string{
			{"Origin", "http://evil.example"},
			{"Sec-Fetch-Site", "cross-site"},
		} {
			if p := b.post("/sites", url.Values{"name": {"Evil"}}, h...); p.status != http.StatusForbidden {
				t.Errorf("post with %s: %s = %d, want 403", h[0], h[1], p.status)
			}
			if p := b.post("/sites/"+parisID+"/delete", nil, h...); p.status != http.StatusForbidden {
				t.Errorf("delete with %s: %s = %d, want 403", h[0], h[1], p.status)
			}
		}
		if ids := siteIDs(t, b.get("/sites").body); ids["Evil"] != "" || ids["Paris"] == "" {
			t.Errorf("a refused post changed the list: %v", ids)
		}
	})

	t.Run("delete removes the site", func(t *testing.T) {
		needSite(t, parisID)
		expectRedirect(t, b.post("/sites/"+parisID+"/delete", nil), "/sites")
		if ids := siteIDs(t, b.get("/sites").body); ids["Paris"] != "" || len(ids) != 2 {
			t.Errorf("after delete: %v", ids)
		}
		p := b.post("/sites/"+parisID+"/delete", nil)
		if p.status != http.StatusNotFound || !strings.Contains(text(byID(parseHTML(t, p.body), "error")), "no longer exists") {
			t.Errorf("deleting again: %d %q", p.status, text(byID(parseHTML(t, p.body), "error")))
		}
	})

	t.Run("cluster lists the node as leader and voter", func(t *testing.T) {
		p := b.get("/cluster")
		if p.status != http.StatusOK {
			t.Fatalf("GET /cluster = %d\n%s", p.status, p.body)
		}
		doc := parseHTML(t, p.body)
		var rows [][]string
		for _, tr := range findAll(doc, tag("tr")) {
			if id, ok := attr(tr, "data-node"); ok {
				cells := texts(findAll(tr, tag("td")))
				rows = append(rows, cells)
				if class, _ := attr(tr, "class"); id != "t1" || !strings.Contains(class, "leader") {
					t.Errorf("row %s class %q: want t1 marked leader", id, class)
				}
			}
		}
		if len(rows) != 1 {
			t.Fatalf("rows = %q, want one node", rows)
		}
		if want := []string{"t1 Leader this node", "Test building", "Voter", "Leader", "Alive"}; !slices.Equal(rows[0][:5], want) {
			t.Errorf("row = %q, want %q...", rows[0], want)
		}
		if rows[0][5] == "0" {
			t.Error("applied index is 0 on a node that has applied writes")
		}
		if got := text(byID(doc, "summary")); !strings.HasPrefix(got, "Leader t1, term ") {
			t.Errorf("summary = %q", got)
		}
	})

	t.Run("unknown page is 404", func(t *testing.T) {
		if p := b.get("/nope"); p.status != http.StatusNotFound {
			t.Errorf("GET /nope = %d", p.status)
		}
	})

	t.Run("stylesheet is served", func(t *testing.T) {
		p := b.get("/assets/console.css")
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/css") || !strings.Contains(p.body, "table") {
			t.Errorf("stylesheet: %d %q", p.status, p.header.Get("Content-Type"))
		}
	})

	t.Run("logout ends the session", func(t *testing.T) {
		old := b.cookie()
		expectRedirect(t, b.post("/logout", nil), "/login")
		expectRedirect(t, b.get("/"), "/login")
		// The old cookie no longer works anywhere: the session ended on the cluster.
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.AddCookie(old)
		expectRedirect(t, b.do(req), "/login")
	})
}

func TestLoginThrottled(t *testing.T) {
	b := newBrowser(t, startNode(t))
	var p page
	for range 6 {
		p = b.post("/login", url.Values{"email": {"admin@lintel.local"}, "password": {"guess"}})
	}
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("sixth failed login = %d (Retry-After %q), want 429 with Retry-After", p.status, p.header.Get("Retry-After"))
	}
	if got := text(byID(parseHTML(t, p.body), "error")); !strings.Contains(got, "too many failed logins") && !strings.Contains(got, "Too many failed logins") {
		t.Errorf("error = %q", got)
	}
	// Even the right password waits: the form must not let a guesser through.
	if p := b.post("/login", url.Values{"email": {"admin@lintel.local"}, "password": {"secret-pass"}}); p.status != http.StatusTooManyRequests || b.cookie() != nil {
		t.Errorf("right password while throttled = %d, cookie %v", p.status, b.cookie())
	}
}
