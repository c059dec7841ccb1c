package console_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var rowID = regexp.MustCompile(`<tr id="card-([a-z0-9]+)"`)

// The card list's read model moves rows as cards change; after every
// change, the page read next shows exactly the API's list (which reads the
// state's index), in the same order, with no wait.
func TestCardListFollowsEveryChange(t *testing.T) {
	base := startNode(t)
	b := newBrowser(t, base)
	b.login()
	api := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", base)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []byte
		out, _ = readAll(resp)
		return resp.StatusCode, out
	}
	code, out := api("POST", "/api/v1/sites", `{"name":"Moves"}`)
	var site struct{ ID string }
	if json.Unmarshal(out, &site); code != 201 {
		t.Fatalf("site: %d %s", code, out)
	}
	if code, out := api("POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = Moves\n"); code != 201 {
		t.Fatalf("config: %d %s", code, out)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []string
	create := func(i int) {
		code, out := api("POST", "/api/v1/sites/"+site.ID+"/cards", fmt.Sprintf(`{"first_name":"F%d","last_name":"L%02d","email":"m%d@example.com","reader_config":"Moves","private_id":"%d"}`, i, rng.IntN(40), i, 5000+i))
		var c struct{ ID string }
		if json.Unmarshal(out, &c); code != 201 {
			t.Fatalf("card: %d %s", code, out)
		}
		ids = append(ids, c.ID)
	}
	for i := range 20 {
		create(i)
	}
	check := func(step string) {
		t.Helper()
		_, out := api("GET", "/api/v1/sites/"+site.ID+"/cards?limit=1000", "")
		var want struct{ Items []struct{ ID string } }
		json.Unmarshal(out, &want)
		var wantIDs []string
		for _, c := range want.Items {
			wantIDs = append(wantIDs, c.ID)
		}
		page := b.get("/sites/" + site.ID + "/cards")
		var got []string
		for _, m := range rowID.FindAllStringSubmatch(page.body, -1) {
			got = append(got, m[1])
		}
		if !slices.Equal(got, wantIDs) {
			t.Fatalf("%s: the page lists %v, the state %v", step, got, wantIDs)
		}
		desc := b.get("/sites/" + site.ID + "/cards?sort=name&dir=desc")
		got = got[:0]
		for _, m := range rowID.FindAllStringSubmatch(desc.body, -1) {
			got = append(got, m[1])
		}
		slices.Reverse(got)
		if !slices.Equal(got, wantIDs) {
			t.Fatalf("%s: the descending page is not the reverse", step)
		}
	}
	check("start")
	for step := range 40 {
		switch k := rng.IntN(3); {
		case k == 0 && len(ids) > 0:
			i := rng.IntN(len(ids))
			if code, out := api("PATCH", "/api/v1/cards/"+ids[i], fmt.Sprintf(`{"last_name":"L%02d"}`, rng.IntN(40))); code != 200 {
				t.Fatalf("rename: %d %s", code, out)
			}
		case k == 1 && len(ids) > 0:
			i := rng.IntN(len(ids))
			if code, out := api("DELETE", "/api/v1/cards/"+ids[i], ""); code != 204 {
				t.Fatalf("delete: %d %s", code, out)
			}
			ids = slices.Delete(ids, i, i+1)
		default:
			create(100 + step)
		}
		check(fmt.Sprintf("step %d", step))
	}
}

func readAll(resp *http.Response) ([]byte, error) {
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return []byte(sb.String()), nil
		}
	}
}

var idemField = regexp.MustCompile(`name="idem" value="([0-9a-f]+)"`)

// A form sent twice (a double click, a reload of the answer) makes its
// card once: the form carries a key, which becomes the API's Idempotency-Key.
func TestFormSentTwiceWritesOnce(t *testing.T) {
	base := startNode(t)
	b := newBrowser(t, base)
	b.login()
	req, _ := http.NewRequest("POST", base+"/api/v1/sites", strings.NewReader(`{"name":"Twice"}`))
	req.Header.Set("Content-Type", "application/json")
	var site struct{ ID string }
	json.Unmarshal([]byte(b.do(req).body), &site)
	req, _ = http.NewRequest("POST", base+"/api/v1/sites/"+site.ID+"/reader-configs", strings.NewReader("lintel-reader-config 1\nname = Twice\n"))
	if p := b.do(req); p.status != 201 {
		t.Fatalf("config: %d %s", p.status, p.body)
	}
	form := b.get("/sites/" + site.ID + "/cards/new")
	m := idemField.FindStringSubmatch(form.body)
	if m == nil {
		t.Fatal("the Add form carries no key")
	}
	values := url.Values{"idem": {m[1]}, "kind": {"private_id"}, "first_name": {"Tom"}, "last_name": {"Twice"}, "email": {"tom@example.com"},
		"reader_config": {"Twice"}, "private_id": {"2222"}}
	for i := range 2 {
		if p := b.post("/sites/"+site.ID+"/cards", values); p.status != http.StatusSeeOther {
			t.Fatalf("post %d: %d %s", i, p.status, p.body)
		}
	}
	page := b.get("/sites/" + site.ID + "/cards")
	if n := len(rowID.FindAllString(page.body, -1)); n != 1 {
		t.Fatalf("%d cards after the same form twice, want 1", n)
	}
	// A new form is a new key: a second card is made.
	values.Set("idem", idemField.FindStringSubmatch(b.get("/sites/" + site.ID + "/cards/new").body)[1])
	values.Set("private_id", "3333")
	values.Set("first_name", "Tina")
	values.Set("email", "tina@example.com")
	if p := b.post("/sites/"+site.ID+"/cards", values); p.status != http.StatusSeeOther {
		t.Fatalf("second form: %d %s", p.status, p.body)
	}
	if n := len(rowID.FindAllString(b.get("/sites/"+site.ID+"/cards").body, -1)); n != 2 {
		t.Fatalf("%d cards after a second form, want 2", n)
	}
}
