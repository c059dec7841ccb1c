package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"lintel/node"
)

// dialLive opens /ws as the browser's page would, with its cookie and origin.
func (b *browser) dialLive(query, origin string) (*websocket.Conn, *http.Response, error) {
	u := strings.Replace(b.base, "http://", "ws://", 1) + "/ws" + query
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if ck := b.cookie(); ck != nil {
		h.Set("Cookie", ck.Name+"="+ck.Value)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial(u, h)
}

func readLive(t *testing.T, c *websocket.Conn, within time.Duration) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, b, err := c.ReadMessage()
	return string(b), err
}

func TestLiveUpdates(t *testing.T) {
	base := startNode(t)
	b := newBrowser(t, base)
	b.login()

	t.Run("a change reaches an open page", func(t *testing.T) {
		c, _, err := b.dialLive("", base)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The first message is the page's live parts as they are now.
		first, err := readLive(t, c, 5*time.Second)
		if err != nil || !strings.Contains(first, `id="credits"`) {
			t.Fatalf("first message: %q %v", first, err)
		}
		// A change to the account (the alert threshold) sends the header again.
		req, _ := http.NewRequest(http.MethodPatch, base+"/api/v1/credits", strings.NewReader(`{"alert_threshold": 10}`))
		req.Header.Set("Content-Type", "application/json")
		if p := b.do(req); p.status != http.StatusOK {
			t.Fatalf("patch credits: %d %s", p.status, p.body)
		}
		msg, err := readLive(t, c, 5*time.Second)
		if err != nil || !strings.Contains(msg, "alert-credit") {
			t.Fatalf("after the threshold change: %q %v", msg, err)
		}
	})

	t.Run("another origin is refused", func(t *testing.T) {
		for _, origin := range []string{"http://evil.example", "", "null"} {
			_, resp, err := b.dialLive("", origin)
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("origin %q: %v %v", origin, resp, err)
			}
		}
	})

	t.Run("no session is refused", func(t *testing.T) {
		anon := newBrowser(t, base)
		_, resp, err := anon.dialLive("", base)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no session: %v %v", resp, err)
		}
	})

	t.Run("an unknown view is refused", func(t *testing.T) {
		_, resp, err := b.dialLive("?view="+url.QueryEscape("<script>"), base)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("unknown view: %v %v", resp, err)
		}
	})

	t.Run("a flood of tabs is cut at the limit", func(t *testing.T) {
		var open []*websocket.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		refused := 0
		for range 40 {
			c, resp, err := b.dialLive("", base)
			if err != nil {
				if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("refusal: %v %v", resp, err)
				}
				refused++
				continue
			}
			open = append(open, c)
		}
		// 16 a session; a tab of an earlier step may still be closing.
		if len(open) > 16 || refused < 24 {
			t.Fatalf("%d open, %d refused; want at most 16 open", len(open), refused)
		}
	})

	t.Run("an oversized message closes the connection", func(t *testing.T) {
		fresh := newBrowser(t, base)
		fresh.login()
		c, _, err := fresh.dialLive("", base)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		readLive(t, c, 5*time.Second)
		c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 64<<10)))
		for {
			if _, err := readLive(t, c, 5*time.Second); err != nil {
				if websocket.IsUnexpectedCloseError(err) || strings.Contains(err.Error(), "close") || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
					return
				}
				t.Fatalf("after an oversized message: %v", err)
			}
		}
	})

	t.Run("losing the right ends the live connection", func(t *testing.T) {
		call := func(method, path, body string) (int, string) {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			p := b.do(req)
			return p.status, p.body
		}
		code, out := call("POST", "/api/v1/profiles", `{"name":"Desk","rights":{"cards":["view"]}}`)
		var prof struct{ ID string }
		if json.Unmarshal([]byte(out), &prof); code != 201 {
			t.Fatalf("profile: %d %s", code, out)
		}
		if code, out := call("POST", "/api/v1/operators", `{"first_name":"Dee","last_name":"Desk","email":"dee@example.com","profile_id":"`+prof.ID+`","password":"dee-secret-pw"}`); code != 201 {
			t.Fatalf("operator: %d %s", code, out)
		}
		dee := newBrowser(t, base)
		expectRedirect(t, dee.post("/login", url.Values{"email": {"dee@example.com"}, "password": {"dee-secret-pw"}}), "/")
		c, _, err := dee.dialLive("?view=outbox", base)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		readLive(t, c, 5*time.Second)
		if code, out := call("PATCH", "/api/v1/profiles/"+prof.ID, `{"name":"Desk","rights":{"sites":["view"]}}`); code != 200 {
			t.Fatalf("patch profile: %d %s", code, out)
		}
		for {
			if _, err := readLive(t, c, 5*time.Second); err != nil {
				if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
					t.Fatalf("after the right was taken away: %v", err)
				}
				return
			}
		}
	})

	t.Run("logging out ends the live connection", func(t *testing.T) {
		other := newBrowser(t, base)
		other.login()
		c, _, err := other.dialLive("", base)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		readLive(t, c, 5*time.Second)
		expectRedirect(t, other.post("/logout", nil), "/login")
		for {
			if _, err := readLive(t, c, 5*time.Second); err != nil {
				if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
					t.Fatalf("after logout: %v", err)
				}
				return
			}
		}
	})
}

// A node that stops closes its live connections (the HTTP server does not
// track them), and the browser is told why.
func TestLiveClosedWhenTheNodeStops(t *testing.T) {
	n, err := node.Start(node.Config{
		DataDir: t.TempDir(), NodeID: "t2", Building: "Test building",
		HTTP: "127.0.0.1:0", Raft: "127.0.0.1:0", Gossip: "127.0.0.1:0", Readers: "127.0.0.1:0",
		AdminEmail: "admin@lintel.local", AdminPassword: "secret-pass", LogLevel: "warn", LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	base := "http://" + n.Addr()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("node not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := newBrowser(t, base)
	b.login()
	c, _, err := b.dialLive("", base)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readLive(t, c, 5*time.Second)
	go n.Stop()
	for {
		if _, err := readLive(t, c, 10*time.Second); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Fatalf("after the node stopped: %v", err)
			}
			return
		}
	}
}

// An oversized form body is refused before anything is read into a write,
// and nothing is made.
func TestOversizedFormRefused(t *testing.T) {
	base := startNode(t)
	b := newBrowser(t, base)
	b.login()
	p := b.post("/sites", url.Values{"name": {strings.Repeat("x", 70<<10)}})
	if p.status < 400 || p.status >= 500 {
		t.Fatalf("a 70 KiB form: %d", p.status)
	}
	if ids := siteIDs(t, b.get("/sites").body); len(ids) != 0 {
		t.Fatalf("an oversized form made sites: %v", ids)
	}
	// The QR code of a message that is not there (or not the operator's) is a 404.
	if p := b.get("/outbox/no-such-message/qr.png"); p.status != http.StatusNotFound {
		t.Fatalf("qr of an unknown message: %d", p.status)
	}
}
