package api_test

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"lintel/internal/testnode"
	"lintel/node"
)

// loginAs logs in as another operator of the node c talks to.
func loginAs(t *testing.T, c *testnode.Client, email, password string) *testnode.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	o := &testnode.Client{Base: c.Base, HTTP: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	expect(t, o.Do(t, "POST", "/api/v1/session", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), nil), 200, "")
	return o
}

// created posts body and returns the id of what it made.
func created(t *testing.T, c *testnode.Client, path, body string) string {
	t.Helper()
	var v struct{ ID string }
	r := c.Do(t, "POST", path, body, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &v)
	return v.ID
}

// sheetTitled checks the title row and the column row of a list export
// and returns the data rows.
func sheetTitled(t *testing.T, c *testnode.Client, path string, title []string, columns ...string) [][]string {
	t.Helper()
	g := grid(t, download(t, c, path))
	if len(g) < 2 {
		t.Fatalf("%s: no title and columns: %q", path, g)
	}
	cellsEqual(t, path+" row 1", g[0], title...)
	cellsEqual(t, path+" row 2", g[1], columns...)
	return g[2:]
}

func rowsEqual(t *testing.T, what string, got [][]string, want ...[]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d:\n got %q\nwant %q", what, len(got), len(want), got, want)
	}
	for i := range want {
		cellsEqual(t, fmt.Sprintf("%s, data row %d", what, i+1), got[i], want[i]...)
	}
}

// withoutDemo leaves out the demo's own customer account (col names it),
// whose credit the demo's phone keeps moving.
func withoutDemo(rows [][]string, col int) [][]string {
	var out [][]string
	for _, r := range rows {
		if len(r) > col && r[col] == "Demo Customer" {
			continue
		}
		out = append(out, r)
	}
	return out
}

// The exports of the account's own lists (seed 003 figures 9, 22, 34 and
// 37) on a demo node, whose account is a reseller: the rows are those of
// the JSON lists, with their filters, and formulas are made inert.
func TestAccountListExports(t *testing.T) {
	n := testnode.StartWith(t, "ax1", func(c *node.Config) { c.Demo = true })
	testnode.WaitReady(t, n)
	admin := testnode.Login(t, n)
	testnode.Eventually(t, 15*time.Second, func() bool { return credits(t, admin).Available >= 1000 }, "the demo credits were never loaded")

	var profiles struct{ Items []struct{ ID, Name string } }
	decodeInto(t, admin.Do(t, "GET", "/api/v1/profiles", "", nil), &profiles)
	adminProfile := ""
	for _, p := range profiles.Items {
		if p.Name == "Administrator" {
			adminProfile = p.ID
		}
	}
	if adminProfile == "" {
		t.Fatalf("no Administrator profile: %+v", profiles)
	}
	sitesOnly := created(t, admin, "/api/v1/profiles", `{"name":"Sites only","rights":{"sites":["view"]}}`)
	operator := func(first, last, email, profile, password string) string {
		body := fmt.Sprintf(`{"first_name":%q,"last_name":%q,"email":%q,"profile_id":%q`, first, last, email, profile)
		if password != "" {
			body += fmt.Sprintf(`,"password":%q`, password)
		}
		return created(t, admin, "/api/v1/operators", body+"}")
	}
	operator("James", "DANIEL", "james@stid.com", adminProfile, "james-secret")
	operator("Claudia", "WHITE", "claudia@stid.com", adminProfile, "") // invited: Created
	mike := operator("Mike", "BRADLEY", "mike@stid.com", adminProfile, "mike-secret")
	expect(t, admin.Do(t, "POST", "/api/v1/operators/"+mike+"/disable", "", nil), 200, "")
	operator(hyperlink, "EVIL", "evil@stid.com", adminProfile, "evil-secret")
	operator("Sam", "ROSS", "sam@stid.com", sitesOnly, "sam-secret")

	// History lines by three people: sites, a reader configuration, a card.
	james := loginAs(t, admin, "james@stid.com", "james-secret")
	created(t, james, "/api/v1/sites", `{"name":"Lyon"}`)
	evil := loginAs(t, admin, "evil@stid.com", "evil-secret")
	created(t, evil, "/api/v1/sites", `{"name":"Evil Site"}`)
	london := created(t, admin, "/api/v1/sites", `{"name":"London"}`)
	created(t, admin, "/api/v1/sites/"+london+"/reader-configs", "lintel-reader-config 1\nname = London\n")
	created(t, admin, "/api/v1/sites/"+london+"/cards", `{"first_name":"Aymerick","last_name":"BRADLEY","email":"aymerick@stid.com","reader_config":"London","private_id":"12356479"}`)

	// Two customer accounts and three transfers (one made with the account).
	aix := created(t, admin, "/api/v1/accounts", `{"name":"Aix High School","email":"pierre@aix.example","first_name":"Pierre","last_name":"DURAND","credits":10}`)
	sum := created(t, admin, "/api/v1/accounts", `{"name":"=SUM(1,2)","kind":"reseller","email":"alex@stid.example","first_name":"Alexandru","last_name":"BOERIU"}`)
	created(t, admin, "/api/v1/accounts/"+aix+"/transfers", `{"credits":5,"comment":"PO 1"}`)
	created(t, admin, "/api/v1/accounts/"+sum+"/transfers", `{"credits":3,"comment":"@cmd"}`)

	hourAgo := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	inAnHour := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))

	t.Run("account history, figure 9", func(t *testing.T) {
		columns := []string{"Time Stamp", "Page", "Action", "Performed By"}
		title := []string{"", "", "Account History"}
		// The export has the rows of the JSON list, for the same filters.
		sameAsList := func(query string) [][]string {
			t.Helper()
			rows := sheetTitled(t, admin, "/api/v1/history/export.xlsx"+query, title, columns...)
			var list struct {
				Items []struct {
					At                 time.Time
					Area, Action, Node string
					PerformedBy        string `json:"performed_by"`
				}
			}
			sep := "?"
			if query != "" {
				sep = "&"
			}
			decodeInto(t, admin.Do(t, "GET", "/api/v1/history"+query+sep+"limit=1000", "", nil), &list)
			var want [][]string
			for _, h := range list.Items {
				by := h.PerformedBy
				if strings.HasPrefix(by, "=") {
					by = "'" + by
				}
				want = append(want, []string{h.At.UTC().Format("02-01-2006 15:04"), h.Area, h.Action, by})
			}
			rowsEqual(t, "history"+query, rows, want...)
			return rows
		}
		all := sameAsList("")
		find := func(rows [][]string, cells ...string) {
			t.Helper()
			for _, r := range rows {
				if len(r) == 4 && strings.Join(r[1:], "|") == strings.Join(cells, "|") {
					return
				}
			}
			t.Fatalf("no history line %q in %q", cells, rows)
		}
		find(all, "Customer Sites", "New site created : Lyon", "James DANIEL")
		find(all, "Customer Sites", "New site created : Evil Site", "'"+hyperlink+" EVIL") // guarded
		find(all, "Users (VCards)", "Virtual card created : Aymerick BRADLEY", "Administrator")
		find(all, "Customer Accounts", "5 Credits transferred to account successfully : Aix High School", "Administrator")
		for _, r := range all {
			if !sheetDate.MatchString(r[0]) {
				t.Fatalf("time stamp of %q", r)
			}
		}

		rowsEqual(t, "?q=lyon", sameAsList("?q=lyon"), all[indexOf(t, all, "New site created : Lyon")])
		if len(sameAsList("?q=daniel")) < 2 { // created, then his own site
			t.Fatal("search by the person who acted")
		}
		if rows := sameAsList("?from=" + hourAgo + "&to=" + inAnHour); len(rows) != len(all) {
			t.Fatalf("the last hour has %d of %d lines", len(rows), len(all))
		}
		rowsEqual(t, "from in an hour", sameAsList("?from="+inAnHour))
		rowsEqual(t, "to an hour ago", sameAsList("?to="+hourAgo))
		expect(t, admin.Do(t, "GET", "/api/v1/history/export.xlsx?from=yesterday", "", nil), 400, "invalid_value")
	})

	t.Run("users and profiles, figure 22", func(t *testing.T) {
		title := []string{"Users and Profiles"}
		columns := []string{"Profile", "First Name", "Last Name", "Email", "Field 1", "Field 2", "Status"}
		rows := sheetTitled(t, admin, "/api/v1/operators/export.xlsx", title, columns...)
		rowsEqual(t, "operators", rows,
			[]string{"Administrator", "Administrator", "", "admin@lintel.local", "", "", "Activated"},
			[]string{"Administrator", "Mike", "BRADLEY", "mike@stid.com", "", "", "Disabled"},
			[]string{"Administrator", "James", "DANIEL", "james@stid.com", "", "", "Activated"},
			[]string{"Administrator", "'" + hyperlink, "EVIL", "evil@stid.com", "", "", "Activated"},
			[]string{"Sites only", "Sam", "ROSS", "sam@stid.com", "", "", "Activated"},
			[]string{"Administrator", "Claudia", "WHITE", "claudia@stid.com", "", "", "Created"})
		rowsEqual(t, "?status=created", sheetTitled(t, admin, "/api/v1/operators/export.xlsx?status=created", title, columns...), rows[5])
		rowsEqual(t, "?q=sites+only", sheetTitled(t, admin, "/api/v1/operators/export.xlsx?q=sites+only", title, columns...), rows[4])
		rowsEqual(t, "?q=stid.com", sheetTitled(t, admin, "/api/v1/operators/export.xlsx?q=stid.com", title, columns...), rows[1:]...)
	})

	t.Run("customer accounts, figure 34", func(t *testing.T) {
		title := []string{"Customer Accounts"}
		columns := []string{"Company Name", "Profile", "First Name", "Last Name", "Status", "Number of Credits"}
		rows := withoutDemo(sheetTitled(t, admin, "/api/v1/accounts/export.xlsx", title, columns...), 0)
		rowsEqual(t, "accounts", rows,
			[]string{"'=SUM(1,2)", "Reseller", "Alexandru", "BOERIU", "Created", "3"},
			[]string{"Aix High School", "End Customer", "Pierre", "DURAND", "Created", "15"})
		rowsEqual(t, "?q=durand", sheetTitled(t, admin, "/api/v1/accounts/export.xlsx?q=durand", title, columns...), rows[1])
		rowsEqual(t, "?status=disabled", sheetTitled(t, admin, "/api/v1/accounts/export.xlsx?status=disabled", title, columns...))
	})

	t.Run("credit transfer history, figure 37", func(t *testing.T) {
		title := []string{"Credit Transfer History"}
		columns := []string{"Time Stamp", "Transferred To", "Transferred By", "Credits", "Comment"}
		rows := sheetTitled(t, admin, "/api/v1/transfers/export.xlsx", title, columns...)
		for _, r := range rows {
			if !sheetDate.MatchString(r[0]) {
				t.Fatalf("time stamp of %q", r)
			}
		}
		stamps := func(rows [][]string) [][]string {
			out := make([][]string, len(rows))
			for i, r := range rows {
				out[i] = r[1:]
			}
			return out
		}
		rows = withoutDemo(rows, 1)
		rowsEqual(t, "transfers", stamps(rows),
			[]string{"Aix High School", "Administrator", "10", ""},
			[]string{"Aix High School", "Administrator", "5", "PO 1"},
			[]string{"'=SUM(1,2)", "Administrator", "3", "'@cmd"})
		path := "/api/v1/transfers/export.xlsx"
		rowsEqual(t, "?q=po+1", sheetTitled(t, admin, path+"?q=po+1", title, columns...), rows[1])
		rowsEqual(t, "?q=sum", sheetTitled(t, admin, path+"?q=sum", title, columns...), rows[2])
		rowsEqual(t, "the last hour", withoutDemo(sheetTitled(t, admin, path+"?from="+hourAgo+"&to="+inAnHour, title, columns...), 1), rows...)
		rowsEqual(t, "from in an hour", sheetTitled(t, admin, path+"?from="+inAnHour, title, columns...))
		rowsEqual(t, "to an hour ago", sheetTitled(t, admin, path+"?to="+hourAgo+"&q=aix", title, columns...))
		expect(t, admin.Do(t, "GET", path+"?to=31-12-2018", "", nil), 400, "invalid_value")
	})

	t.Run("rights of the lists", func(t *testing.T) {
		sam := loginAs(t, admin, "sam@stid.com", "sam-secret")
		anon := &testnode.Client{Base: admin.Base, HTTP: http.DefaultClient}
		for _, p := range []string{"/api/v1/history/export.xlsx", "/api/v1/operators/export.xlsx", "/api/v1/accounts/export.xlsx", "/api/v1/transfers/export.xlsx"} {
			expect(t, sam.Do(t, "GET", p, "", nil), 403, "forbidden")
			expect(t, anon.Do(t, "GET", p, "", nil), 401, "unauthenticated")
		}
	})
}

func indexOf(t *testing.T, rows [][]string, action string) int {
	t.Helper()
	for i, r := range rows {
		if len(r) > 2 && r[2] == action {
			return i
		}
	}
	t.Fatalf("no line %q", action)
	return -1
}
