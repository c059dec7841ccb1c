package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lintel/internal/testnode"
	"lintel/wallet/wallettest"
)

// appliedIndex is the node's applied index, as the self-check reports it.
func appliedIndex(t *testing.T, c *testnode.Client) uint64 {
	t.Helper()
	r := c.Do(t, "GET", "/api/v1/self-check", "", nil)
	var out struct {
		AppliedIndex uint64 `json:"applied_index"`
	}
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		t.Fatalf("self-check: %d %s", r.StatusCode, r.Body)
	}
	return out.AppliedIndex
}

// Bodies that encoding/json would take but mean two things, or text no one
// meant, are refused with 400 before anything reaches the log.
func TestStrictRequestBodies(t *testing.T) {
	n := testnode.Start(t, "strict1")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)

	long := strings.Repeat("x", 500_000)
	cases := []struct {
		name, body, code, field string
	}{
		{"duplicate key", `{"first_name":"Ann","first_name":"Bob","last_name":"Lee","email":"a@example.com"}`, "malformed_json", ""},
		{"duplicate nested key", `{"first_name":"Ann","last_name":"Lee","email":"a@example.com","fields":{"badge":"1","badge":"2"}}`, "malformed_json", ""},
		{"invalid UTF-8", "{\"first_name\":\"A\xffn\",\"last_name\":\"Lee\",\"email\":\"a@example.com\"}", "malformed_json", ""},
		{"NUL in text", `{"first_name":"Ann","last_name":"Lee","email":"a@example.com","phone":"1\u00002"}`, "invalid_value", "phone"},
		{"500 000-character field", `{"first_name":"Ann","last_name":"Lee","email":"a@example.com","fields":{"badge":"` + long[:500_000] + `"}}`, "too_long", "fields.badge"},
		{"long field name", `{"first_name":"Ann","last_name":"Lee","email":"a@example.com","fields":{"` + long[:60] + `":"1"}}`, "too_long", "fields name"},
		{"long email", `{"first_name":"Ann","last_name":"Lee","email":"a@` + long[:2000] + `"}`, "too_long", "email"},
	}
	before := appliedIndex(t, c)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Do(t, "POST", "/api/v1/cardholders", tc.body, nil)
			expect(t, r, 400, tc.code)
			if e := errorOf(t, r); tc.field != "" && e.Error.Field != tc.field {
				t.Fatalf("field %q, want %q: %s", e.Error.Field, tc.field, r.Body)
			}
		})
	}
	if after := appliedIndex(t, c); after != before {
		t.Fatalf("refused requests moved the applied index from %d to %d", before, after)
	}
	// The same request, well-formed, is taken.
	r := c.Do(t, "POST", "/api/v1/cardholders", `{"first_name":"Ann","last_name":"Lee","email":"a@example.com","fields":{"badge":"12"}}`, nil)
	expect(t, r, 201, "")
	// A body the wallet sends is held to the same rules.
	r = c.Do(t, "POST", "/wallet/v1/receipts", `{"card_id":"x","card_id":"y"}`, nil)
	if r.StatusCode != 400 || !strings.Contains(r.Body, "twice") {
		t.Fatalf("wallet receipt with a duplicate key: %d %s", r.StatusCode, r.Body)
	}
}

// A message template may use only the placeholders its kind fills in: a
// typo would reach every person as typed.
func TestTemplatePlaceholdersChecked(t *testing.T) {
	n := testnode.Start(t, "tmpl1")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	r := c.Do(t, "PUT", "/api/v1/templates/card_activation", `{"subject":"Card for {frist_name}","body":"{link}"}`, nil)
	expect(t, r, 400, "unknown_placeholder")
	if e := errorOf(t, r); e.Error.Field != "subject" || !strings.Contains(e.Error.Message, "{frist_name}") || !strings.Contains(e.Error.Message, "{first_name}") {
		t.Fatalf("the refusal does not name the typo and the right names: %s", r.Body)
	}
	// {site} is not filled in an invitation.
	expect(t, c.Do(t, "PUT", "/api/v1/templates/operator_invitation", `{"subject":"Welcome","body":"{site}: {link}"}`, nil), 400, "unknown_placeholder")
	expect(t, c.Do(t, "PUT", "/api/v1/templates/operator_invitation", `{"subject":"Welcome to {account}","body":"Hello {first_name}, { not a placeholder }: {link}"}`, nil), 200, "")
}

// Requests that need no login and that the state would refuse never become
// log entries, and one address cannot send them faster than a phone would.
func TestOpenEndpointsRefuseBeforeTheLog(t *testing.T) {
	n := testnode.Start(t, "open1")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	anon := &testnode.Client{Base: c.Base, HTTP: c.HTTP}
	before := appliedIndex(t, c)
	posts := []struct{ path, body, code string }{
		{"/wallet/v1/receipts", `{"card_id":"nope","signature":"AAAA"}`, "card_not_found"},
		{"/activate/bogus-token", `{"public_key":"AAAA"}`, "link_not_found"},
		{"/invitation/bogus-token", `{"password":"long enough password"}`, "invitation_not_found"},
	}
	limited := 0
	for i := range 300 {
		p := posts[i%len(posts)]
		r := anon.Do(t, "POST", p.path, p.body, nil)
		switch r.StatusCode {
		case 429:
			limited++
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		case 404, 400, 403, 409:
			if i < 3 {
				if e := errorOf(t, r); e.Error.Code != p.code {
					t.Fatalf("%s: %s, want %s", p.path, r.Body, p.code)
				}
			}
		default:
			t.Fatalf("%s: %d %s", p.path, r.StatusCode, r.Body)
		}
	}
	if after := appliedIndex(t, c); after != before {
		t.Fatalf("300 refused posts moved the applied index from %d to %d", before, after)
	}
	t.Logf("300 refused posts from one address: %d limited (429), applied index %d before and after", limited, before)
	if limited < 200 {
		t.Fatalf("only %d of 300 posts from one address were limited", limited)
	}
}

// Failed logins are counted for the whole cluster, per person and address:
// wrong passwords spread over three nodes add up, and lock that person at
// that address only, not a colleague behind the same address.
func TestLoginThrottleClusterWide(t *testing.T) {
	n1 := testnode.Start(t, "lt1")
	testnode.WaitReady(t, n1)
	n2 := testnode.Start(t, "lt2", n1.GossipAddr())
	n3 := testnode.Start(t, "lt3", n1.GossipAddr())
	testnode.WaitReady(t, n2)
	testnode.WaitReady(t, n3)
	admin := testnode.Login(t, n1)
	var prof struct{ ID string }
	r := admin.Do(t, "POST", "/api/v1/profiles", `{"name":"Viewers","rights":{"sites":["view"]}}`, nil)
	expect(t, r, 201, "")
	decodeInto(t, r, &prof)
	expect(t, admin.Do(t, "POST", "/api/v1/operators", `{"first_name":"Bob","last_name":"Lee","email":"bob@example.com","profile_id":"`+prof.ID+`","password":"bob-secret-1"}`, nil), 201, "")

	login := func(n interface{ Addr() string }, email, password string) testnode.Response {
		c := &testnode.Client{Base: "http://" + n.Addr(), HTTP: &http.Client{Timeout: 10 * time.Second}}
		return c.Do(t, "POST", "/api/v1/session", `{"email":"`+email+`","password":"`+password+`"}`, nil)
	}
	nodes := []interface{ Addr() string }{n1, n2, n3, n1, n2}
	for i, n := range nodes {
		if r := login(n, testnode.AdminEmail, "wrong password"); r.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d %s", i+1, r.StatusCode, r.Body)
		}
	}
	// The right password, on the third node, after 5 wrong ones spread over all three.
	r = login(n3, testnode.AdminEmail, testnode.AdminPassword)
	expect(t, r, 429, "too_many_attempts")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Someone else behind the same address gets their password wrong five
	// times on one node...
	for range 5 {
		login(n1, "carol@example.com", "wrong password")
	}
	// ...and a colleague there is not locked out, on any node.
	for _, n := range []interface{ Addr() string }{n1, n2, n3} {
		expect(t, login(n, "bob@example.com", "bob-secret-1"), 200, "")
	}
	// Guesses sent all at once are counted before their passwords are
	// checked: of 30 in parallel on a follower, at most 5 are tried.
	var wg sync.WaitGroup
	var tried atomic.Int32
	for range 30 {
		wg.Go(func() {
			if r := login(n2, "dave@example.com", "wrong password"); r.StatusCode == 401 {
				tried.Add(1)
			}
		})
	}
	wg.Wait()
	if n := tried.Load(); n > 5 {
		t.Fatalf("%d of 30 parallel guesses had their password checked, want at most 5", n)
	}
}

// An Idempotency-Key answered for one link answers for that link only:
// the requests that need no login share one principal.
func TestOpenIdempotencyKeyIsBoundToItsLink(t *testing.T) {
	s := wallettest.Setup(t, "idem1")
	_, link := s.IssueCard(t, "Ada", "Lovelace", "1234")
	anon := &testnode.Client{Base: s.URL, HTTP: &http.Client{Timeout: 10 * time.Second}}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	body := `{"public_key":"` + base64.StdEncoding.EncodeToString(der) + `"}`
	h := map[string]string{"Idempotency-Key": "phone-1"}
	path := strings.TrimPrefix(link, s.URL)
	expect(t, anon.Do(t, "POST", path, body, h), 200, "")
	expect(t, anon.Do(t, "POST", path, body, h), 200, "") // the retry gets the first answer
	before := appliedIndex(t, s.Client)
	for range 5 {
		expect(t, anon.Do(t, "POST", "/activate/someone-elses-link", body, h), 404, "link_not_found")
	}
	if after := appliedIndex(t, s.Client); after != before {
		t.Fatalf("a reused key on other links moved the applied index from %d to %d", before, after)
	}
}
