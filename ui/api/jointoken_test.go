package api_test

import (
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"testing"
	"time"

	"lintel/consensus/state"
	"lintel/internal/testnode"
	"lintel/node"
)

// The join token and node removal are the installation's: an
// administrator of a customer account (which has an Administrator profile
// of its own) may not read, rotate or use them.
func TestJoinTokenIsTheInstallationsOnly(t *testing.T) {
	n := testnode.StartWith(t, "jt1", func(c *node.Config) { c.Demo = true })
	testnode.WaitReady(t, n)
	root := testnode.Login(t, n)
	expect(t, root.Do(t, "GET", "/api/v1/cluster/join-token", "", nil), 200, "")
	expect(t, root.Do(t, "POST", "/api/v1/accounts", `{"name":"Tenant","kind":"end_customer","email":"tenant@example.com","first_name":"Ten","last_name":"Ant"}`, nil), 201, "")
	// The invitation is in the new account's outbox: read it from the replica.
	var link []string
	n.Raft().Read(func(s *state.State) {
		for _, m := range s.Outbox.All() {
			if l := regexp.MustCompile(`/invitation/(\S+)`).FindStringSubmatch(m.Body); l != nil && m.To == "tenant@example.com" {
				link = l
			}
		}
	})
	if link == nil {
		t.Fatal("no invitation for the tenant")
	}
	jar, _ := cookiejar.New(nil)
	tenant := &testnode.Client{Base: "http://" + n.Addr(), HTTP: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	expect(t, tenant.Do(t, "POST", "/invitation/"+link[1], `{"password":"tenant-secret"}`, nil), 200, "")
	expect(t, tenant.Do(t, "POST", "/api/v1/session", `{"email":"tenant@example.com","password":"tenant-secret"}`, nil), 200, "")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/cluster/join-token"}, {"POST", "/api/v1/cluster/join-token"},
		{"DELETE", "/api/v1/cluster/nodes/jt1"}, {"POST", "/api/v1/cluster/snapshot"},
	} {
		if r := tenant.Do(t, c.method, c.path, "", nil); r.StatusCode != 403 {
			t.Errorf("a customer's administrator: %s %s answered %d %s", c.method, c.path, r.StatusCode, r.Body)
		}
	}
}
