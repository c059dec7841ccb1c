package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state/voucher"
	"lintel/internal/testnode"
	"lintel/voucherkey"
)

func decodeInto(t *testing.T, r testnode.Response, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		t.Fatalf("decode %d %s: %v", r.StatusCode, r.Body, err)
	}
}

type creditsBody struct {
	Balance, Reserved, Available, Used, Refunded int64
	Alert                                        bool
}

func credits(t *testing.T, c *testnode.Client) creditsBody {
	var cr creditsBody
	decodeInto(t, c.Do(t, "GET", "/api/v1/credits", "", nil), &cr)
	return cr
}

// The whole card lifecycle through the API of one real node: voucher,
// reader configuration, card, send, activation link, activation with a
// P-256 key, revoke, the phone's deletion receipt, refund.
func TestRegistryFlow(t *testing.T) {
	n := testnode.Start(t, "reg1")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	var sess struct{ Account struct{ ID string } }
	decodeInto(t, c.Do(t, "GET", "/api/v1/session", "", nil), &sess)

	// A credit issuer, a voucher, loaded once.
	key, _ := voucherkey.GenerateKey()
	expect(t, c.Do(t, "POST", "/api/v1/credits/issuers?name=integrator", string(voucher.MarshalPublicKey(key.Public())), nil), 201, "")
	_, text := voucher.Issue(key, sess.Account.ID, "PO-1", 100, time.Now())
	expect(t, c.Do(t, "POST", "/api/v1/credits/vouchers", string(text), nil), 200, "")
	expect(t, c.Do(t, "POST", "/api/v1/credits/vouchers", string(text), nil), 409, "voucher_used")
	other, _ := voucherkey.GenerateKey()
	_, stranger := voucher.Issue(other, sess.Account.ID, "PO-2", 100, time.Now())
	expect(t, c.Do(t, "POST", "/api/v1/credits/vouchers", string(stranger), nil), 403, "unknown_issuer")
	if cr := credits(t, c); cr.Balance != 100 || cr.Available != 100 {
		t.Fatalf("credits: %+v", cr)
	}
	expect(t, c.Do(t, "PATCH", "/api/v1/credits", `{"alert_threshold": 98}`, nil), 200, "")

	// A site and its reader configuration; a bad file is refused with its line.
	var site struct{ ID string }
	decodeInto(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"London"}`, nil), &site)
	r := c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = London\ntech.desfire = maybe\n", nil)
	expect(t, r, 400, "invalid_reader_config")
	if !strings.Contains(r.Body, "line 3") {
		t.Fatalf("no line number: %s", r.Body)
	}
	expect(t, c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n", nil), 201, "")
	expect(t, c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = london\n", nil), 409, "duplicate_name")
	expect(t, c.Do(t, "DELETE", "/api/v1/sites/"+site.ID, "", nil), 409, "site_not_empty")

	// A card; the same private id again is refused.
	var card struct{ ID, Status, CardholderID string }
	r = c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/cards", `{"first_name":"Claudia","last_name":"Green","email":"claudia@example.com","reader_config":"London","private_id":"127496"}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &card)
	expect(t, c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/cards", `{"first_name":"X","last_name":"Y","email":"x@example.com","reader_config":"London","private_id":"127496"}`, nil), 409, "duplicate_private_id")

	// Send: credits reserved, the message in the outbox holds the link.
	expect(t, c.Do(t, "POST", "/api/v1/cards/"+card.ID+"/send", "", nil), 200, "")
	if cr := credits(t, c); cr.Reserved != 5 || cr.Available != 95 || !cr.Alert {
		t.Fatalf("after send: %+v", cr)
	}
	expect(t, c.Do(t, "PATCH", "/api/v1/cards/"+card.ID, `{"email":"new@example.com"}`, nil), 409, "field_locked")
	expect(t, c.Do(t, "PATCH", "/api/v1/cards/"+card.ID, `{"phone":"0612"}`, nil), 200, "")
	var outbox struct {
		Items []struct {
			To, Body, Status string
			CardID           string `json:"card_id"`
		}
	}
	decodeInto(t, c.Do(t, "GET", "/api/v1/outbox", "", nil), &outbox)
	if len(outbox.Items) != 1 || outbox.Items[0].To != "claudia@example.com" {
		t.Fatalf("outbox: %+v", outbox)
	}
	link := regexp.MustCompile(`http://\S+/activate/(\S+)`).FindStringSubmatch(outbox.Items[0].Body)
	if link == nil || !strings.HasPrefix(link[0], "http://"+n.Addr()+"/activate/") {
		t.Fatalf("no activation URL on the advertised address: %q", outbox.Items[0].Body)
	}
	anon := &testnode.Client{Base: c.Base, HTTP: http.DefaultClient}
	// GET shows a page and does not use the link up.
	if r := anon.Do(t, "GET", "/activate/"+link[1], "", nil); r.StatusCode != 200 || !strings.Contains(r.Body, "wallet") {
		t.Fatalf("activation page: %d", r.StatusCode)
	}
	phone, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&phone.PublicKey)
	body := `{"public_key":"` + base64.StdEncoding.EncodeToString(der) + `"}`
	expect(t, anon.Do(t, "POST", "/activate/"+link[1], `{"public_key":"!!"}`, nil), 400, "invalid_value")
	expect(t, anon.Do(t, "POST", "/activate/"+link[1], body, nil), 200, "")
	expect(t, anon.Do(t, "POST", "/activate/"+link[1], body, nil), 409, "link_used")
	decodeInto(t, c.Do(t, "GET", "/api/v1/cards/"+card.ID, "", nil), &card)
	if card.Status != "activated" {
		t.Fatalf("card %+v", card)
	}
	if cr := credits(t, c); cr.Used != 5 || cr.Balance != 95 || cr.Reserved != 0 {
		t.Fatalf("after activation: %+v", cr)
	}
	expect(t, c.Do(t, "POST", "/api/v1/cards/"+card.ID+"/send", "", nil), 409, "already_activated")

	// Revoke; the phone checks in, is told to delete, and its receipt refunds.
	expect(t, c.Do(t, "POST", "/api/v1/cards/"+card.ID+"/revoke", "", nil), 200, "")
	r = anon.Do(t, "POST", "/wallet/v1/checkin", `{"card_ids":["`+card.ID+`","unknown"]}`, nil)
	if r.StatusCode != 200 || !strings.Contains(r.Body, `"status":"pending_revoke","delete":true`) || !strings.Contains(r.Body, `"status":"deleted","delete":true`) {
		t.Fatalf("checkin: %s", r.Body)
	}
	sum := sha256.Sum256(command.DeletionReceiptMessage(card.ID))
	sig, _ := ecdsa.SignASN1(rand.Reader, phone, sum[:])
	stranger2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad, _ := ecdsa.SignASN1(rand.Reader, stranger2, sum[:])
	expect(t, anon.Do(t, "POST", "/wallet/v1/receipts", `{"card_id":"`+card.ID+`","signature":"`+base64.StdEncoding.EncodeToString(bad)+`"}`, nil), 403, "bad_signature")
	expect(t, anon.Do(t, "POST", "/wallet/v1/receipts", `{"card_id":"`+card.ID+`","signature":"`+base64.StdEncoding.EncodeToString(sig)+`"}`, nil), 200, "")
	if cr := credits(t, c); cr.Refunded != 5 || cr.Balance != 100 {
		t.Fatalf("after revoke: %+v", cr)
	}
	expect(t, c.Do(t, "POST", "/api/v1/cards/"+card.ID+"/lost", "", nil), 200, "")
	if r := c.Do(t, "GET", "/api/v1/self-check?consistency=strong", "", nil); !strings.Contains(r.Body, `"ok":true`) {
		t.Fatalf("self-check: %s", r.Body)
	}

	// The history recorded it all, newest last.
	var hist struct {
		Items []struct{ Area, Action string }
	}
	decodeInto(t, c.Do(t, "GET", "/api/v1/history?q=virtual+card&limit=1000", "", nil), &hist)
	var actions []string
	for _, h := range hist.Items {
		actions = append(actions, h.Action)
	}
	want := []string{"created", "sent", "updated", "activated", "revoke requested", "revoked", "marked lost"}
	if len(actions) != len(want) {
		t.Fatalf("history: %q", actions)
	}
	for i, w := range want {
		if !strings.Contains(actions[i], w) {
			t.Fatalf("history %d: %q, want %q", i, actions[i], w)
		}
	}
}

// Profiles limit what an operator may do; API tokens carry the operator's
// rights, are shown once and stop working when revoked.
func TestRightsAndTokens(t *testing.T) {
	n := testnode.Start(t, "reg2")
	testnode.WaitReady(t, n)
	admin := testnode.Login(t, n)
	var prof struct{ ID string }
	r := admin.Do(t, "POST", "/api/v1/profiles", `{"name":"Viewers","rights":{"sites":["view"],"cards":["view"],"credits":["view","create"]}}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &prof)
	expect(t, admin.Do(t, "POST", "/api/v1/operators", `{"first_name":"James","last_name":"Daniel","email":"james@example.com","profile_id":"`+prof.ID+`","password":"james-secret"}`, nil), 201, "")
	// Invited (no password): status created, an invitation in the outbox.
	r = admin.Do(t, "POST", "/api/v1/operators", `{"first_name":"Mary","last_name":"Foster","email":"mary@example.com","profile_id":"`+prof.ID+`"}`, nil)
	expect(t, r, 201, "")
	if !strings.Contains(r.Body, `"status":"created"`) {
		t.Fatalf("invited operator: %s", r.Body)
	}
	var outbox struct{ Items []struct{ To, Body string } }
	decodeInto(t, admin.Do(t, "GET", "/api/v1/outbox?q=mary", "", nil), &outbox)
	m := regexp.MustCompile(`/invitation/(\S+)`).FindStringSubmatch(outbox.Items[0].Body)
	anon := &testnode.Client{Base: admin.Base, HTTP: http.DefaultClient}
	expect(t, anon.Do(t, "POST", "/invitation/"+m[1], `{"password":"short"}`, nil), 400, "invalid_value")
	expect(t, anon.Do(t, "POST", "/invitation/"+m[1], `{"password":"mary-secret"}`, nil), 200, "")
	expect(t, anon.Do(t, "POST", "/invitation/"+m[1], `{"password":"mary-secret"}`, nil), 404, "invitation_not_found")
	expect(t, anon.Do(t, "POST", "/api/v1/session", `{"email":"mary@example.com","password":"mary-secret"}`, nil), 200, "")

	james := &testnode.Client{Base: admin.Base, HTTP: http.DefaultClient}
	r = james.Do(t, "POST", "/api/v1/session", `{"email":"james@example.com","password":"james-secret"}`, nil)
	expect(t, r, 200, "")
	var cookie string
	for _, ck := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(ck, "lintel_session=") {
			cookie = strings.SplitN(strings.TrimPrefix(ck, "lintel_session="), ";", 2)[0]
		}
	}
	bearer := map[string]string{"Authorization": "Bearer " + cookie}
	expect(t, james.Do(t, "GET", "/api/v1/sites", "", bearer), 200, "")
	expect(t, james.Do(t, "POST", "/api/v1/sites", `{"name":"Nope"}`, bearer), 403, "forbidden")
	expect(t, james.Do(t, "GET", "/api/v1/operators", "", bearer), 403, "forbidden")
	expect(t, james.Do(t, "POST", "/api/v1/credits/vouchers", "lintel-voucher 1", bearer), 403, "forbidden")

	// An API token: shown once, works as Bearer, revocable.
	var tok struct{ ID, Token string }
	r = james.Do(t, "POST", "/api/v1/tokens", `{"name":"script"}`, bearer)
	expect(t, r, 201, "")
	decodeInto(t, r, &tok)
	if !strings.HasPrefix(tok.Token, "lnt_") {
		t.Fatalf("token: %s", r.Body)
	}
	tb := map[string]string{"Authorization": "Bearer " + tok.Token}
	expect(t, james.Do(t, "GET", "/api/v1/sites", "", tb), 200, "")
	expect(t, james.Do(t, "POST", "/api/v1/sites", `{"name":"Nope"}`, tb), 403, "forbidden")
	if l := admin.Do(t, "GET", "/api/v1/tokens", "", nil); strings.Contains(l.Body, tok.Token) || !strings.Contains(l.Body, tok.ID) {
		t.Fatalf("token list shows the secret or misses the token: %s", l.Body)
	}
	expect(t, admin.Do(t, "DELETE", "/api/v1/tokens/"+tok.ID, "", nil), 204, "")
	expect(t, james.Do(t, "GET", "/api/v1/sites", "", tb), 401, "unauthenticated")

	// An end customer account cannot make customer accounts.
	expect(t, admin.Do(t, "POST", "/api/v1/accounts", `{"name":"Co","email":"co@example.com","first_name":"A","last_name":"B"}`, nil), 403, "not_a_reseller")
}

// Configurators and configuration cards (SPEC 4.5), message templates, and
// a cardholder's edit and deletion, through the API of a real node.
func TestConfiguratorsTemplatesCardholders(t *testing.T) {
	n := testnode.Start(t, "reg3")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	var site struct{ ID string }
	decodeInto(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"London"}`, nil), &site)
	expect(t, c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n", nil), 201, "")

	// The account words its own activation message.
	expect(t, c.Do(t, "PUT", "/api/v1/templates/config_activation", `{"subject":"Badge {configuration}","body":"Salut {first_name}: {link}"}`, nil), 200, "")
	expect(t, c.Do(t, "PUT", "/api/v1/templates/config_activation", `{"subject":"x","body":"no link"}`, nil), 400, "invalid_value")

	var cf struct{ ID string }
	r := c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/configurators", `{"first_name":"Paul","last_name":"Durand","email":"paul@stid.com"}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &cf)
	expect(t, c.Do(t, "PATCH", "/api/v1/configurators/"+cf.ID, `{"email":"other@stid.com"}`, nil), 400, "malformed_json")
	var cc struct{ ID, Status, Kind string }
	r = c.Do(t, "POST", "/api/v1/configurators/"+cf.ID+"/config-cards", `{"reader_config":"London"}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &cc)
	if cc.Kind != "config" || cc.Status != "created" {
		t.Fatalf("config card: %+v", cc)
	}
	// Free of credits: sending works with none loaded, and the message uses the template.
	expect(t, c.Do(t, "POST", "/api/v1/config-cards/"+cc.ID+"/send", "", nil), 200, "")
	var outbox struct {
		Items []struct{ Subject, Body string }
	}
	decodeInto(t, c.Do(t, "GET", "/api/v1/outbox", "", nil), &outbox)
	if len(outbox.Items) != 1 || outbox.Items[0].Subject != "Badge London" || !strings.HasPrefix(outbox.Items[0].Body, "Salut Paul: http://") {
		t.Fatalf("templated message: %+v", outbox.Items)
	}
	// Configuration cards are not user cards.
	expect(t, c.Do(t, "GET", "/api/v1/cards/"+cc.ID, "", nil), 404, "card_not_found")
	if l := c.Do(t, "GET", "/api/v1/sites/"+site.ID+"/cards", "", nil); strings.Contains(l.Body, cc.ID) {
		t.Fatal("a configuration card is listed with the user cards")
	}
	if l := c.Do(t, "GET", "/api/v1/configurators/"+cf.ID+"/config-cards", "", nil); !strings.Contains(l.Body, cc.ID) {
		t.Fatalf("configuration cards of the configurator: %s", l.Body)
	}
	// Figures 88–91: reports and exports with the header block.
	g := grid(t, download(t, c, "/api/v1/sites/"+site.ID+"/configurators/report.xlsx"))
	checkBlock(t, g, "Report", "Building reg3", "London")
	cellsEqual(t, "configurator report columns", g[5], "First Name", "Last Name", "Email", "Phone Number", "Creation Date")
	if g[6][0] != "Paul" || g[6][2] != "paul@stid.com" || !sheetDate.MatchString(g[6][4]) {
		t.Fatalf("configurator report row: %q", g[6])
	}
	g = grid(t, download(t, c, "/api/v1/sites/"+site.ID+"/configurators/export.xlsx"))
	cellsEqual(t, "configurator export columns", g[5], "First Name", "Last Name", "Email", "Phone Number")
	g = grid(t, download(t, c, "/api/v1/sites/"+site.ID+"/config-cards/report.xlsx"))
	cellsEqual(t, "config card report columns", g[5], "First Name", "Last Name", "Blue Mobile ID Configuration",
		"Configuration Creation Date", "Configuration Activation Date", "Configuration Revoked Date", "Status")
	if g[6][0] != "Paul" || g[6][2] != "London" || g[6][6] != "Created and Email Sent" {
		t.Fatalf("config card report row: %q", g[6])
	}
	g = grid(t, download(t, c, "/api/v1/sites/"+site.ID+"/config-cards/export.xlsx"))
	cellsEqual(t, "config card export", g[6], "Paul", "Durand", "London", "Created and Email Sent")
	g = grid(t, download(t, c, "/api/v1/sites/"+site.ID+"/reader-configs/export.xlsx"))
	if g[6][0] != "London" {
		t.Fatalf("reader configuration export: %q", g)
	}

	expect(t, c.Do(t, "DELETE", "/api/v1/configurators/"+cf.ID, "", nil), 409, "configurator_in_use")
	expect(t, c.Do(t, "DELETE", "/api/v1/config-cards/"+cc.ID, "", nil), 204, "")
	expect(t, c.Do(t, "DELETE", "/api/v1/configurators/"+cf.ID, "", nil), 204, "")

	// A cardholder: edited, then deleted with their card.
	var h struct{ ID string }
	r = c.Do(t, "POST", "/api/v1/cardholders", `{"first_name":"Mary","last_name":"Foster","email":"mary@example.com"}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &h)
	expect(t, c.Do(t, "PATCH", "/api/v1/cardholders/"+h.ID, `{"phone":"4142434445"}`, nil), 200, "")
	g = grid(t, download(t, c, "/api/v1/cardholders/export.xlsx"))
	cellsEqual(t, "cardholder export", g[1], "First Name", "Last Name", "Email", "Phone Number", "Visitor", "Valid From", "Valid Until")
	cellsEqual(t, "cardholder row", g[2], "Mary", "Foster", "mary@example.com", "4142434445", "No")
	var card struct{ ID string }
	r = c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/cards", `{"cardholder_id":"`+h.ID+`","reader_config":"London","private_id":"658742"}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &card)
	expect(t, c.Do(t, "DELETE", "/api/v1/cardholders/"+h.ID, "", nil), 204, "")
	expect(t, c.Do(t, "GET", "/api/v1/cards/"+card.ID, "", nil), 404, "card_not_found")
}

func TestReadersSchedulesAccessLevelsAPI(t *testing.T) {
	n := testnode.Start(t, "reg4")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	var site struct{ ID string }
	decodeInto(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"London"}`, nil), &site)
	expect(t, c.Do(t, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n", nil), 201, "")
	expect(t, c.Do(t, "PATCH", "/api/v1/sites/"+site.ID, `{"time_zone":"Europe/London"}`, nil), 200, "")
	expect(t, c.Do(t, "PATCH", "/api/v1/sites/"+site.ID, `{"time_zone":"Nowhere/Else"}`, nil), 400, "invalid_value")

	expect(t, c.Do(t, "POST", "/api/v1/readers", `{"id":"front door!","name":"Front","node_id":"reg4","site_id":"`+site.ID+`","reader_config":"London"}`, nil), 400, "invalid_value")
	expect(t, c.Do(t, "POST", "/api/v1/readers", `{"id":"front","name":"Front","node_id":"reg4","site_id":"`+site.ID+`","reader_config":"London","unlock_seconds":1}`, nil), 400, "invalid_value")
	// A reader on a node the cluster does not have would never run its door.
	r := c.Do(t, "POST", "/api/v1/readers", `{"id":"front","name":"Front","node_id":"reg-typo","site_id":"`+site.ID+`","reader_config":"London"}`, nil)
	expect(t, r, 400, "node_not_found")
	if e := errorOf(t, r); e.Error.Field != "node_id" || !strings.Contains(e.Error.Message, "reg-typo") {
		t.Fatalf("the refusal does not name the node: %s", r.Body)
	}
	r = c.Do(t, "POST", "/api/v1/readers", `{"id":"front","name":"Front","node_id":"reg4","site_id":"`+site.ID+`","reader_config":"London"}`, nil)
	expect(t, r, 201, "")
	expect(t, c.Do(t, "PATCH", "/api/v1/readers/front", `{"node_id":"reg-typo"}`, nil), 400, "node_not_found")
	if !strings.Contains(r.Body, `"unlock_seconds":5`) || !strings.Contains(r.Body, `"transport":"link"`) {
		t.Fatalf("reader defaults: %s", r.Body)
	}
	expect(t, c.Do(t, "PATCH", "/api/v1/readers/front", `{"transport":"ble","ble_adapter":"hci0"}`, nil), 200, "")
	var sc struct{ ID string }
	r = c.Do(t, "POST", "/api/v1/schedules", `{"site_id":"`+site.ID+`","name":"Office","windows":[{"days":[1,2,3,4,5],"from":"08:00","to":"18:00"}],"holidays":["2026-12-25"]}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &sc)
	expect(t, c.Do(t, "POST", "/api/v1/access-levels", `{"site_id":"`+site.ID+`","name":"Staff","reader_ids":["front"],"schedule_id":"`+sc.ID+`"}`, nil), 201, "")
	if l := c.Do(t, "GET", "/api/v1/access-levels", "", nil); !strings.Contains(l.Body, `"reader_ids":["front"]`) {
		t.Fatalf("access levels: %s", l.Body)
	}
	expect(t, c.Do(t, "DELETE", "/api/v1/readers/front", "", nil), 204, "")
	if l := c.Do(t, "GET", "/api/v1/readers", "", nil); strings.Contains(l.Body, `"front"`) {
		t.Fatalf("deleted reader still listed: %s", l.Body)
	}
}
