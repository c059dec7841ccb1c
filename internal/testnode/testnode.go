// Package testnode starts real in-process nodes on loopback for tests.
package testnode

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"lintel/node"
)

// Password of the first operator of every test cluster.
const (
	AdminEmail    = "admin@lintel.local"
	AdminPassword = "secret-pass"
)

// Start runs one node; join lists gossip addresses of existing nodes.
func Start(t testing.TB, id string, join ...string) *node.Node {
	t.Helper()
	return StartIn(t, t.TempDir(), id, join...)
}

// StartIn runs one node on a given data dir (to restart it).
func StartIn(t testing.TB, dir, id string, join ...string) *node.Node {
	t.Helper()
	n, err := node.Start(node.Config{
		DataDir: dir, NodeID: id, Building: "Building " + id,
		HTTP: "127.0.0.1:0", Raft: "127.0.0.1:0", Gossip: "127.0.0.1:0", Readers: "127.0.0.1:0",
		Join: join, JoinToken: tokenFor(t, join), AdminEmail: AdminEmail, AdminPassword: AdminPassword, LogLevel: logLevel(), LogOutput: logOut(),
	})
	if err != nil {
		t.Fatal(err)
	}
	started(t, n)
	return n
}

// The nodes started here by gossip address, so a joiner finds its token.
var (
	mu    sync.Mutex
	nodes = map[string]*node.Node{}
)

func started(t testing.TB, n *node.Node) {
	mu.Lock()
	nodes[n.GossipAddr()] = n
	mu.Unlock()
	t.Cleanup(func() {
		n.Stop()
		mu.Lock()
		delete(nodes, n.GossipAddr())
		mu.Unlock()
	})
}

// tokenFor is the join token of the cluster of the first seed started
// here (as an administrator would copy it).
func tokenFor(t testing.TB, join []string) string {
	t.Helper()
	if len(join) == 0 {
		return ""
	}
	mu.Lock()
	seed := nodes[join[0]]
	mu.Unlock()
	if seed == nil {
		return ""
	}
	var tok string
	Eventually(t, 15*time.Second, func() bool { tok = seed.JoinToken(); return tok != "" }, "node %s has no join token", seed.ID())
	return tok
}

// StartWith runs one node on a fresh data dir after opt has adjusted its
// configuration (for example Config.SMTP); join lists gossip addresses.
func StartWith(t testing.TB, id string, opt func(*node.Config), join ...string) *node.Node {
	t.Helper()
	cfg := node.Config{
		DataDir: t.TempDir(), NodeID: id, Building: "Building " + id,
		HTTP: "127.0.0.1:0", Raft: "127.0.0.1:0", Gossip: "127.0.0.1:0", Readers: "127.0.0.1:0",
		Join: join, JoinToken: tokenFor(t, join), AdminEmail: AdminEmail, AdminPassword: AdminPassword, LogLevel: logLevel(), LogOutput: logOut(),
	}
	if opt != nil {
		opt(&cfg)
	}
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	started(t, n)
	return n
}

// WaitReady polls /readyz until it answers 200.
func WaitReady(t testing.TB, n *node.Node) {
	t.Helper()
	Eventually(t, 15*time.Second, func() bool {
		resp, err := http.Get("http://" + n.Addr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "node %s never became ready", n.ID())
}

// Eventually polls cond every 20 ms until it holds or the time is up.
func Eventually(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client is a logged-in HTTP client for one node.
type Client struct {
	Base string
	HTTP *http.Client
}

// Login logs in as the first operator.
func Login(t testing.TB, n *node.Node) *Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &Client{Base: "http://" + n.Addr(), HTTP: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	resp := c.Do(t, "POST", "/api/v1/session", `{"email":"`+AdminEmail+`","password":"`+AdminPassword+`"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("login on %s: %d %s", n.ID(), resp.StatusCode, resp.Body)
	}
	return c
}

// Response is a read answer.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       string
}

// Do sends one request and reads the whole answer.
func (c *Client) Do(t testing.TB, method, path, body string, header map[string]string) Response {
	t.Helper()
	req, err := http.NewRequest(method, c.Base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// LINTEL_TEST_LOG=debug|info|warn shows the nodes' logs on stderr.
func logLevel() string {
	if l := os.Getenv("LINTEL_TEST_LOG"); l != "" {
		return l
	}
	return "error"
}

func logOut() io.Writer {
	if os.Getenv("LINTEL_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
