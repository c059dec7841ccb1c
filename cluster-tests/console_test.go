package clustertests

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-rod/rod"
	"github.com/go-rod/rod/lib/proto"
	"github.com/xuri/excelize/v2"
)

// An operator does the day's work in the console of one building while a
// card is activated and revoked through another: a site, a reader
// configuration uploaded, a card added and sent; the list follows live,
// without a reload, in the seed's words; an import with a bad row shows the
// row; the export opens as a workbook; a view-only operator is offered no
// write action.
func TestConsoleDailyWork(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	dir := t.TempDir()
	c.loadCredits(dir, n1, n1, "PO-console-1", 50)

	b := newBrowser(t)
	b.open(c.url(n2) + "/login")
	b.shot("login")
	b.login(c.url(n2), adminEmail, adminPassword)
	b.open(c.url(n2) + "/sites")
	b.shot("sites-empty")

	// A site through the form of node2's console.
	b.fill("#name", "London")
	b.click(`form[method=post][action="/sites"] button`)
	b.shot("sites")
	sites, err := c.sites(n1, true)
	if err != nil {
		t.Fatal(err)
	}
	var siteID string
	for id, name := range sites {
		if name == "London" {
			siteID = id
		}
	}
	if siteID == "" {
		t.Fatalf("the site added in the console is not in the cluster: %v", sites)
	}
	b.shot("site-dashboard-empty")

	// The reader configuration file through the upload form.
	cfg := filepath.Join(dir, "london.pse")
	if err := os.WriteFile(cfg, []byte("lintel-reader-config 1\nname = London\ndescription = Front doors\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.open(c.url(n2) + "/sites/" + siteID + "/reader-configs")
	b.upload("#file", cfg)
	b.click(`form[enctype="multipart/form-data"] button`)
	if !b.has("#notice") || !strings.Contains(b.text("#config-table"), "London") {
		t.Fatalf("the uploaded configuration is not listed: %s", b.text("main"))
	}
	b.shot("reader-configs")
	b.click(`#config-table a`)
	if s := b.text("#chip-settings"); !strings.Contains(s, "MIFARE DESFire") || !strings.Contains(s, "ON") {
		t.Errorf("preview: %q", s)
	}
	b.shot("reader-config-preview")

	// A card through the Add form.
	b.open(c.url(n2) + "/sites/" + siteID + "/cards")
	b.click("#add-card")
	b.fill("#first_name", "Claudia")
	b.fill("#last_name", "Green")
	b.fill("#email", "claudia@example.com")
	b.fill("#private_id", "127496")
	b.shot("card-add")
	b.click(`form.card-form button[type=submit]`)
	if !b.has("#notice") {
		t.Fatalf("no notice after Add: %s", b.text("main"))
	}
	var list struct {
		Items []struct{ ID, FirstName string }
	}
	c.expect(n1, 200, "GET", "/api/v1/sites/"+siteID+"/cards?consistency=strong", nil).decode(&list)
	if len(list.Items) != 1 {
		t.Fatalf("cards after Add: %+v", list)
	}
	card := list.Items[0]
	row := `#card-` + card.ID + ` td.status`
	if s := b.text(row); s != "Created" {
		t.Fatalf("a new card shows %q, want Created", s)
	}
	b.waitLive(c, n2)
	before := b.text(`#credits-available`)

	// Send from the row's own button: the page after the post says so.
	b.click(`#card-` + card.ID + ` button[value^="send "]`)
	if !b.has("#notice") {
		t.Fatal("no notice after Send")
	}
	b.waitText(row, "Created and Email Sent", 5*time.Second)
	if after := b.text(`#credits-available`); after == before {
		t.Errorf("the available credit in the header did not move after a send: %s", after)
	}
	b.shot("cards")

	// The phone redeems the link at node1; node2's page turns Activated live.
	b.waitLive(c, n2)
	var outbox struct{ Items []struct{ Body string } }
	c.expect(n1, 200, "GET", "/api/v1/outbox?consistency=strong", nil).decode(&outbox)
	link := ""
	for _, m := range outbox.Items {
		if u := regexp.MustCompile(`http://\S+/activate/\S+`).FindString(m.Body); u != "" {
			link = u
		}
	}
	// The link opened in a phone's browser says what to do, and does not use it up.
	b.open(link)
	if s := b.text("#activation-title"); !strings.Contains(s, "ready") || !strings.Contains(b.text("main"), "London") {
		t.Errorf("a fresh link's page: %q", b.text("main"))
	}
	b.shot("activation-ready")
	b.open(c.url(n2) + "/sites/" + siteID + "/cards")
	b.waitLive(c, n2)
	wallet := filepath.Join(dir, "wallet.json")
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "activate", "--wallet", wallet, link); code != 0 {
		t.Fatalf("wallet activate: %d %s %s", code, out, errs)
	}
	b.waitText(row, "Activated", 5*time.Second)
	b.open(link)
	if s := b.text("#activation-title"); !strings.Contains(s, "already used") {
		t.Errorf("a used link's page: %q", s)
	}
	b.shot("activation-used")
	b.open(c.url(n1) + "/activate/not-a-real-link")
	if s := b.text("#activation-title"); !strings.Contains(s, "not valid") {
		t.Errorf("an unknown link's page: %q", s)
	}
	b.shot("activation-unknown")
	b.open(c.url(n2) + "/sites/" + siteID + "/cards")
	b.waitLive(c, n2)

	// Revoke with the box and the bulk button: Pending Revoke, then the
	// phone checks in at node1 and node2's page shows Revoked.
	b.tick("#pick-" + card.ID)
	b.click(".bulk button[value=revoke]")
	if !b.has("#notice") {
		t.Fatal("no notice after Revoke")
	}
	b.waitText(row, "Pending Revoke", 5*time.Second)
	b.waitLive(c, n2)
	if code, out, errs := runLintel(t, 20*time.Second, "wallet", "checkin", "--wallet", wallet, "--node", c.url(n1)); code != 0 {
		t.Fatalf("wallet checkin: %d %s %s", code, out, errs)
	}
	b.waitText(row, "Revoked", 5*time.Second)

	// Revoke again is not offered; a refused bulk action says why on the row.
	if b.has(`#card-` + card.ID + ` button[value^="revoke "]`) {
		t.Error("a revoked card's row offers Revoke")
	}
	b.tick("#pick-" + card.ID)
	b.click(".bulk button[value=revoke]")
	if s := b.text(`#error`); !strings.Contains(strings.ToLower(s), "only an activated card can be revoked") {
		t.Errorf("refused revoke says %q", s)
	}
	wide, err := b.overflowAt(390)
	if err != nil || wide {
		t.Errorf("the card list scrolls sideways at 390 px (%v)", err)
	}

	// The edit form of a revoked card: the email is locked, with the reason.
	b.open(c.url(n2) + "/cards/" + card.ID + "/edit")
	if !b.has("#email[disabled]") || !strings.Contains(b.text("#email-lock"), "Revoked") {
		t.Errorf("the email of a revoked card is not shown locked")
	}
	b.shot("card-edit-locked")

	// An import with a bad row: nothing is made, and the row says why.
	imp := filepath.Join(dir, "cards.csv")
	os.WriteFile(imp, []byte("First Name,Last Name,Email,Blue Mobile ID Configuration,Private ID/CSN\n"+
		"Mary,Foster,mary@example.com,London,658742\n"+
		"John,Middleton,not-an-email,London,489378\n"), 0o600)
	b.open(c.url(n2) + "/sites/" + siteID + "/cards/import")
	b.upload("#file", imp)
	b.tick(`form[enctype="multipart/form-data"] button`)
	b.waitText("#import-result", "Row", 10*time.Second)
	if s := b.text(`#row-errors tr[data-row="3"]`); !strings.Contains(strings.ToLower(s), "email") {
		t.Errorf("row 3's error: %q", s)
	}
	b.shot("cards-import-errors")
	c.expect(n1, 200, "GET", "/api/v1/sites/"+siteID+"/cards?consistency=strong", nil).decode(&list)
	if len(list.Items) != 1 {
		t.Fatalf("a file with a bad row made cards: %+v", list)
	}

	// The Export link downloads a workbook excelize opens, with the card.
	b.open(c.url(n2) + "/sites/" + siteID + "/cards")
	status, xlsx := b.get(c.url(n2) + b.href(`a[href$="export.xlsx"]`))
	if status != 200 {
		t.Fatalf("export: %d %s", status, xlsx)
	}
	wb, err := excelize.OpenReader(bytes.NewReader(xlsx))
	if err != nil {
		t.Fatalf("the export is not a workbook: %v", err)
	}
	rows, _ := wb.GetRows(wb.GetSheetName(0))
	if !strings.Contains(fmt.Sprint(rows), "Claudia") || !strings.Contains(fmt.Sprint(rows), "127496") {
		t.Errorf("the export does not hold the card: %q", rows)
	}

	// Credits: a voucher pasted into the form; the figures and the header move.
	code, voucherText, errs := runLintel(t, 20*time.Second, "voucher", "issue", "--key", filepath.Join(dir, "issuer-PO-console-1.key"),
		"--account", c.accountID(n1), "--credits", "20", "--id", "PO-console-2")
	if code != 0 {
		t.Fatalf("voucher issue: %d %s", code, errs)
	}
	b.open(c.url(n2) + "/credits")
	before = b.text("#credits-available")
	b.fill("#voucher", voucherText)
	b.click(`form[action="/credits/vouchers"] button`)
	if !b.has("#notice") || b.text("#credits-available") == before {
		t.Errorf("after loading a voucher: %q, header %s (was %s)", b.text("main"), b.text("#credits-available"), before)
	}
	b.shot("credits")

	// The outbox hands the link out, with its QR code drawn by the node.
	b.open(c.url(n2) + "/outbox")
	b.do("open the link", func(p *rod.Page) error {
		el, err := p.Element("#outbox-table details summary")
		if err != nil {
			return err
		}
		return el.Click(proto.InputMouseButtonLeft, 1)
	})
	b.do("QR code drawn", func(p *rod.Page) error {
		for range 100 {
			v, err := p.Eval(`() => { const i = document.querySelector('#outbox-table img.qr'); return !!(i && i.complete && i.naturalWidth > 0) }`)
			if err != nil {
				return err
			}
			if v.Value.Bool() {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("the QR code image did not load")
	})
	b.shot("outbox")

	// A visitor with a validity window, and a configurator with a
	// configuration assigned and sent (free of credit).
	b.open(c.url(n2) + "/visitors")
	b.fill("#first_name", "Victor")
	b.fill("#last_name", "Visit")
	b.fill("#email", "victor@example.com")
	b.do("set the window", func(p *rod.Page) error {
		_, err := p.Eval(`() => { document.querySelector('#valid_from').value = '2026-12-10T09:00'; document.querySelector('#valid_until').value = '2026-12-10T18:00' }`)
		return err
	})
	b.click(`form[action="/visitors"] button[type=submit]`)
	if s := b.text("#holder-table"); !strings.Contains(s, "Victor") || !strings.Contains(s, "10-12-2026 09:00") {
		t.Errorf("the visitor's row: %q", s)
	}
	b.shot("visitors")
	b.open(c.url(n2) + "/cardholders")
	if !strings.Contains(b.text("#holder-table"), "Claudia") {
		t.Errorf("the cardholder of the card is not listed: %q", b.text("#holder-table"))
	}
	b.shot("cardholders")
	b.open(c.url(n2) + "/sites/" + siteID + "/configurators")
	b.fill("#first_name", "Conrad")
	b.fill("#last_name", "Config")
	b.fill("#email", "conrad@example.com")
	b.click(`form.card-form button[type=submit]`)
	b.click(`.configurator form.inline button`)
	b.click(`.configurator button[type=submit]:not(.danger):not(.secondary)`)
	if s := b.text("#configurator-table"); !strings.Contains(s, "Created and Email Sent") {
		t.Errorf("the configuration card after Send: %q", s)
	}
	b.shot("configurators")

	// Private ID settings (figure 66): London authorizes duplicates.
	b.open(c.url(n2) + "/private-id-settings")
	b.click(`#dup-` + siteID + ` button`)
	if s := b.text(`#dup-` + siteID + ` .dup-state`); s != "ON" {
		t.Errorf("after Turn ON: %q", s)
	}
	var st struct {
		PrivateIDDuplicates bool `json:"private_id_duplicates"`
	}
	c.expect(n1, 200, "GET", "/api/v1/sites/"+siteID+"?consistency=strong", nil).decode(&st)
	if !st.PrivateIDDuplicates {
		t.Error("the setting did not reach the cluster")
	}
	b.shot("private-id-settings")
	b.open(c.url(n2) + "/sites?q=lon")
	if !strings.Contains(b.text("#sites"), "London") {
		t.Errorf("the site search does not find London")
	}

	// A view-only operator sees the pages and is offered no write action.
	var prof struct{ ID string }
	c.expect(n1, 201, "POST", "/api/v1/profiles", map[string]any{"name": "Viewer", "rights": map[string][]string{
		"sites": {"view"}, "cards": {"view"}, "reader_configs": {"view"}, "credits": {"view"}, "cardholders": {"view"}, "configurators": {"view"},
	}}).decode(&prof)
	c.expect(n1, 201, "POST", "/api/v1/operators", map[string]any{"first_name": "Vera", "last_name": "Viewer", "email": "vera@example.com",
		"profile_id": prof.ID, "password": "vera-secret-pw"})
	v := newBrowser(t)
	v.login(c.url(n2), "vera@example.com", "vera-secret-pw")
	for _, path := range []string{"/", "/sites", "/sites/" + siteID, "/sites/" + siteID + "/cards", "/sites/" + siteID + "/reader-configs", "/credits", "/outbox", "/private-id-settings", "/cardholders", "/visitors", "/sites/" + siteID + "/configurators"} {
		v.open(c.url(n2) + path)
		for _, sel := range []string{`main form[method=post]`, `#add-card`, `#import-cards`, `.bulk`, `a[href$="/edit"]`} {
			if v.has(sel) {
				t.Errorf("a view-only operator is offered %s on %s", sel, path)
			}
		}
	}
	v.shot("cards-view-only")

	// An operator invited without a password opens the invitation in a
	// browser, sets one and logs in.
	c.expect(n1, 201, "POST", "/api/v1/operators", map[string]any{"first_name": "Ines", "last_name": "Invited", "email": "ines@example.com", "profile_id": prof.ID})
	var ob struct{ Items []struct{ To, Body string } }
	c.expect(n1, 200, "GET", "/api/v1/outbox?consistency=strong&limit=1000", nil).decode(&ob)
	invite := ""
	for _, m := range ob.Items {
		if m.To == "ines@example.com" {
			invite = regexp.MustCompile(`http://\S+/invitation/[A-Za-z0-9_-]+`).FindString(m.Body)
		}
	}
	if invite == "" {
		t.Fatalf("no invitation in the outbox: %+v", ob)
	}
	// The invitation's link is a credential: an operator who may not create
	// operators does not see it in the outbox (nor its QR code).
	v.open(c.url(n2) + "/outbox")
	if strings.Contains(v.text("main"), "ines@example.com") {
		t.Error("a view-only operator sees another operator's invitation link")
	}
	in := newBrowser(t)
	in.open(invite)
	in.shot("invitation")
	in.fill("#password", "ines-secret-pw")
	in.fill("#password2", "ines-secret-pw")
	in.click(`form button[type=submit]`)
	if !strings.Contains(in.text("main"), "password is set") {
		t.Fatalf("after setting the password: %q", in.text("main"))
	}
	in.login(c.url(n1), "ines@example.com", "ines-secret-pw")
	b.open(c.url(n2) + "/cluster")
	b.shot("cluster")
	// Every page fits a phone: nothing scrolls sideways at 390 px.
	for _, path := range []string{"/", "/sites", "/sites/" + siteID, "/sites/" + siteID + "/cards", "/sites/" + siteID + "/cards/new",
		"/sites/" + siteID + "/cards/import", "/cards/" + card.ID + "/edit", "/sites/" + siteID + "/reader-configs", "/sites/" + siteID + "/configurators",
		"/cardholders", "/visitors", "/credits", "/outbox", "/private-id-settings", "/cluster", link} {
		b.open(strings.Replace(c.url(n2)+path, c.url(n2)+"http", "http", 1))
		if wide, err := b.overflowAt(390); err != nil || wide {
			t.Errorf("%s scrolls sideways at 390 px (%v)", path, err)
		}
	}

	// With scripts off the pages still render and the forms still post: a
	// plain form post, as a browser without scripts sends it.
	form := url.Values{"row": {"send " + card.ID}}
	req, _ := http.NewRequest("POST", c.url(n2)+"/sites/"+siteID+"/cards/action", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.url(n2))
	req.AddCookie(&http.Cookie{Name: "lintel_session", Value: c.token})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("a form post without scripts: %d", res.StatusCode)
	}
	b.open(c.url(n2) + res.Header.Get("Location"))
	if !b.has("#notice") || !strings.Contains(b.text(row), "Created and Email Sent") {
		t.Errorf("after Send without scripts: %q", b.text("main"))
	}

	// Deleting a site that still holds cards is refused, with a link to
	// what must go first.
	b.open(c.url(n2) + "/sites")
	b.click(`tr[data-site="` + siteID + `"] button.danger`)
	if !b.has("#blocked a") || !b.has("#error") {
		t.Errorf("a refused site delete: %q", b.text("main"))
	}
	b.shot("sites-delete-refused")

	b.open(c.url(n2) + "/")
	b.shot("welcome")
	b.open(c.url(n2) + "/sites/" + siteID)
	b.shot("site-dashboard")
}

// accountID is the logged-in operator's account.
func (c *cluster) accountID(n *node) string {
	var sess struct{ Account struct{ ID string } }
	c.expect(n, 200, "GET", "/api/v1/session", nil).decode(&sess)
	return sess.Account.ID
}
