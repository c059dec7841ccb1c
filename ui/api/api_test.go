package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"lintel/internal/testnode"
)

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func errorOf(t *testing.T, r testnode.Response) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the error format: %d %s", r.StatusCode, r.Body)
	}
	return e
}

func expect(t *testing.T, r testnode.Response, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
	}
	if code != "" {
		if e := errorOf(t, r); e.Error.Code != code {
			t.Fatalf("code %q, want %q: %s", e.Error.Code, code, r.Body)
		}
	}
}

type site struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Configurations int    `json:"configurations"`
	CardCost       int    `json:"card_cost"`
	ActivationTTL  string `json:"activation_ttl"`
}

func TestAPI(t *testing.T) {
	n := testnode.Start(t, "api1")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	anon := &testnode.Client{Base: c.Base, HTTP: http.DefaultClient}

	t.Run("session", func(t *testing.T) {
		r := c.Do(t, "GET", "/api/v1/session", "", nil)
		expect(t, r, 200, "")
		var s struct {
			Operator struct{ Email, Status string }
			Account  struct{ ID, Name, Kind string }
		}
		json.Unmarshal([]byte(r.Body), &s)
		if s.Operator.Email != testnode.AdminEmail || s.Operator.Status != "activated" || s.Account.Kind != "end_customer" || s.Account.Name != "Building api1" {
			t.Fatalf("session: %s", r.Body)
		}
		if strings.Contains(r.Body, "password") || strings.Contains(r.Body, "$2a$") {
			t.Fatalf("session leaks the password hash: %s", r.Body)
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		expect(t, anon.Do(t, "GET", "/api/v1/sites", "", nil), 401, "unauthenticated")
		expect(t, anon.Do(t, "POST", "/api/v1/sites", `{"name":"x"}`, nil), 401, "unauthenticated")
		expect(t, anon.Do(t, "GET", "/api/v1/cluster", "", nil), 401, "unauthenticated")
		expect(t, anon.Do(t, "GET", "/api/v1/sites", "", map[string]string{"Authorization": "Bearer nonsense"}), 401, "unauthenticated")
	})

	t.Run("bad input", func(t *testing.T) {
		expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":`, nil), 400, "malformed_json")
		expect(t, c.Do(t, "POST", "/api/v1/sites", ``, nil), 400, "malformed_json")
		expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"a","colour":"red"}`, nil), 400, "malformed_json")
		expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"a"} {"name":"b"}`, nil), 400, "malformed_json")
		r := c.Do(t, "POST", "/api/v1/sites", `{"name":"   "}`, nil)
		expect(t, r, 400, "required")
		if errorOf(t, r).Error.Field != "name" {
			t.Fatalf("field: %s", r.Body)
		}
		big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
		expect(t, c.Do(t, "POST", "/api/v1/sites", big, nil), 413, "body_too_large")
		expect(t, c.Do(t, "GET", "/api/v1/sites?limit=0", "", nil), 400, "invalid_value")
		expect(t, c.Do(t, "GET", "/api/v1/sites?limit=1001", "", nil), 400, "invalid_value")
		expect(t, c.Do(t, "GET", "/api/v1/sites?cursor=not*base64", "", nil), 400, "invalid_value")
		expect(t, c.Do(t, "GET", "/api/v1/sites?consistency=eventual", "", nil), 400, "invalid_value")
		expect(t, c.Do(t, "GET", "/api/v1/nothing", "", nil), 404, "not_found")
		// Nothing of that was created.
		var list struct{ Items []site }
		json.Unmarshal([]byte(c.Do(t, "GET", "/api/v1/sites", "", nil).Body), &list)
		if len(list.Items) != 0 {
			t.Fatalf("bad input created sites: %+v", list.Items)
		}
	})

	var london site
	t.Run("sites", func(t *testing.T) {
		r := c.Do(t, "POST", "/api/v1/sites", `{"name":"London"}`, nil)
		expect(t, r, 201, "")
		json.Unmarshal([]byte(r.Body), &london)
		if london.ID == "" || london.Name != "London" || london.CardCost != 5 || london.ActivationTTL != "168h0m0s" {
			t.Fatalf("created: %s", r.Body)
		}
		expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"london"}`, nil), 409, "duplicate_name")
		r = c.Do(t, "GET", "/api/v1/sites/"+london.ID+"?consistency=strong", "", nil)
		expect(t, r, 200, "")
		expect(t, c.Do(t, "GET", "/api/v1/sites/nope", "", nil), 404, "site_not_found")
		expect(t, c.Do(t, "DELETE", "/api/v1/sites/nope", "", nil), 404, "site_not_found")
	})

	t.Run("list search and paging", func(t *testing.T) {
		for i := range 5 {
			expect(t, c.Do(t, "POST", "/api/v1/sites", fmt.Sprintf(`{"name":"Paris %d"}`, i), nil), 201, "")
		}
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			r := c.Do(t, "GET", "/api/v1/sites?q=PARIS&limit=2&cursor="+cursor, "", nil)
			expect(t, r, 200, "")
			var pg struct {
				Items      []site `json:"items"`
				NextCursor string `json:"next_cursor"`
			}
			json.Unmarshal([]byte(r.Body), &pg)
			for _, s := range pg.Items {
				seen = append(seen, s.Name)
			}
			if pg.NextCursor == "" {
				break
			}
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			cursor = pg.NextCursor
		}
		if strings.Join(seen, ",") != "Paris 0,Paris 1,Paris 2,Paris 3,Paris 4" {
			t.Fatalf("pages gave %v", seen)
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		h := map[string]string{"Idempotency-Key": "order-42"}
		r1 := c.Do(t, "POST", "/api/v1/sites", `{"name":"Berlin"}`, h)
		r2 := c.Do(t, "POST", "/api/v1/sites", `{"name":"Berlin"}`, h)
		expect(t, r1, 201, "")
		expect(t, r2, 201, "")
		var a, b site
		json.Unmarshal([]byte(r1.Body), &a)
		json.Unmarshal([]byte(r2.Body), &b)
		if a.ID != b.ID {
			t.Fatalf("same key gave two sites: %s %s", a.ID, b.ID)
		}
		// A different key is a different request: here a duplicate name.
		expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"Berlin"}`, map[string]string{"Idempotency-Key": "order-43"}), 409, "duplicate_name")
		expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"Rome"}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 201)}), 400, "invalid_header")
	})

	t.Run("delete", func(t *testing.T) {
		expect(t, c.Do(t, "DELETE", "/api/v1/sites/"+london.ID, "", nil), 204, "")
		expect(t, c.Do(t, "GET", "/api/v1/sites/"+london.ID, "", nil), 404, "site_not_found")
	})

	t.Run("cluster", func(t *testing.T) {
		r := c.Do(t, "GET", "/api/v1/cluster", "", nil)
		expect(t, r, 200, "")
		var v struct {
			Leader string
			Term   uint64
			Nodes  []struct {
				ID, Suffrage string
				RaftState    string `json:"raft_state"`
				GossipState  string `json:"gossip_state"`
				AppliedIndex uint64 `json:"applied_index"`
			}
		}
		json.Unmarshal([]byte(r.Body), &v)
		if v.Leader != "api1" || v.Term == 0 || len(v.Nodes) != 1 || v.Nodes[0].Suffrage != "voter" ||
			v.Nodes[0].RaftState != "leader" || v.Nodes[0].GossipState != "alive" || v.Nodes[0].AppliedIndex == 0 {
			t.Fatalf("cluster: %s", r.Body)
		}
		expect(t, c.Do(t, "DELETE", "/api/v1/cluster/nodes/ghost", "", nil), 404, "node_not_found")
	})

	t.Run("logout", func(t *testing.T) {
		expect(t, c.Do(t, "DELETE", "/api/v1/session", "", nil), 204, "")
		expect(t, c.Do(t, "GET", "/api/v1/session", "", nil), 401, "unauthenticated")
	})

	t.Run("login throttle", func(t *testing.T) {
		bad := `{"email":"` + testnode.AdminEmail + `","password":"wrong-one"}`
		for i := range 5 {
			expect(t, anon.Do(t, "POST", "/api/v1/session", bad, nil), 401, "bad_credentials")
			_ = i
		}
		r := anon.Do(t, "POST", "/api/v1/session", bad, nil)
		expect(t, r, 429, "too_many_attempts")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		// Even the right password waits.
		good := `{"email":"` + testnode.AdminEmail + `","password":"` + testnode.AdminPassword + `"}`
		expect(t, anon.Do(t, "POST", "/api/v1/session", good, nil), 429, "too_many_attempts")
	})
}

func TestCrossOriginPostRefused(t *testing.T) {
	n := testnode.Start(t, "api2")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)
	r := c.Do(t, "POST", "/api/v1/sites", `{"name":"Evil"}`, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: %d %s", r.StatusCode, r.Body)
	}
	var list struct{ Items []site }
	json.Unmarshal([]byte(c.Do(t, "GET", "/api/v1/sites", "", nil).Body), &list)
	if len(list.Items) != 0 {
		t.Fatal("cross-site post created a site")
	}
}
