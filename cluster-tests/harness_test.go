package clustertests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lintelBin is the binary every test starts; TestMain builds it.
var lintelBin string

const adminEmail = "admin@lintel.local"
const adminPassword = "cluster-tests-pw"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lintel-cluster-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lintelBin, err = buildLintel(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildLintel builds the module root without -race: the nodes are separate
// processes, and a race-instrumented node would distort every timing.
func buildLintel(dir string) (string, error) {
	if b := os.Getenv("LINTEL_BIN"); b != "" {
		return filepath.Abs(b)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root not found next to cluster-tests: %w", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "lintel")
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of lintel failed: %v\n%s", err, b)
	}
	return out, nil
}

// childEnv drops LINTEL_* variables so a developer's shell cannot change
// what the flags say.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LINTEL_") {
			env = append(env, kv)
		}
	}
	return env
}

// Ports come from below the kernel's ephemeral range, so outgoing
// connections never take a port a stopped node will listen on again.
var ports struct {
	sync.Mutex
	next, lo, hi int
}

func freePort(t testing.TB) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.next == 0 {
		ports.lo, ports.hi = 20000, 32000
		if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
			if f := strings.Fields(string(b)); len(f) == 2 {
				if lo, err := strconv.Atoi(f[0]); err == nil && lo > 12000 && lo < ports.hi {
					ports.lo, ports.hi = lo-10000, lo-1
				}
			}
		}
		ports.next = ports.lo + rand.IntN(ports.hi-ports.lo)
	}
	for range ports.hi - ports.lo {
		p := ports.next
		ports.next++
		if ports.next >= ports.hi {
			ports.next = ports.lo
		}
		if portFree(p) {
			return p
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

// portFree checks TCP and UDP: gossip listens on both.
func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// proc is one run of a node process.
type proc struct {
	cmd      *exec.Cmd
	started  time.Time
	done     chan struct{}
	state    *os.ProcessState
	expected bool // the test stopped it on purpose
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// node is one building: its addresses and data dir stay the same across restarts.
type node struct {
	c                           *cluster
	id, building, logLevel      string
	dir, logPath                string
	http, raft, gossip, readers string
	procs                       []*proc
	paused                      bool     // stopped by pause(): checkSameState leaves it out
	extra                       []string // flags on every start (e.g. --tls-cert)
}

func (n *node) String() string { return n.id }

func (n *node) cur() *proc {
	if len(n.procs) == 0 {
		return nil
	}
	return n.procs[len(n.procs)-1]
}

func (n *node) running() bool {
	p := n.cur()
	return p != nil && !p.exited()
}

func (n *node) args(join string) []string {
	a := []string{"serve",
		"--data-dir", n.dir, "--node-id", n.id, "--building", n.building,
		"--http", n.http, "--raft", n.raft, "--gossip", n.gossip, "--readers", n.readers,
		"--admin-password", adminPassword, "--log-level", n.logLevel,
	}
	a = append(a, n.extra...)
	if join != "" {
		a = append(a, "--join", join)
		if tok := n.c.joinToken(); tok != "" {
			a = append(a, "--join-token", tok)
		}
	}
	return a
}

// joinToken is the token the bootstrapping node wrote to its data dir
// (DATA_DIR/join-token), as an administrator would copy it.
func (c *cluster) joinToken() string {
	for _, n := range c.nodes {
		if b, err := os.ReadFile(filepath.Join(n.dir, "join-token")); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// start runs the node with any extra flags; join is empty on a restart
// (it finds its peers itself).
func (n *node) start(join string, extra ...string) {
	t := n.c.t
	t.Helper()
	if n.running() {
		t.Fatalf("%s: start while running", n.id)
	}
	args := append(n.args(join), extra...)
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\n==== %s cluster-tests: starting lintel %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
	bin := lintelBin
	if n.c.bin != "" {
		bin = n.c.bin
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", n.id, err)
	}
	p := &proc{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	n.procs = append(n.procs, p)
}

// kill sends SIGKILL and waits for the process to be gone.
func (n *node) kill() {
	t := n.c.t
	t.Helper()
	p := n.cur()
	if p == nil || p.exited() {
		return
	}
	p.expected = true
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still running 10s after SIGKILL", n.id)
	}
}

// pause freezes the process (SIGSTOP): to the others it looks cut off,
// and it resumes where it was, as after a network partition heals.
func (n *node) pause() {
	n.c.t.Helper()
	if err := n.cur().cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		n.c.t.Fatalf("%s: SIGSTOP: %v", n.id, err)
	}
	n.paused = true
}

func (n *node) resume() {
	n.c.t.Helper()
	if err := n.cur().cmd.Process.Signal(syscall.SIGCONT); err != nil {
		n.c.t.Fatalf("%s: SIGCONT: %v", n.id, err)
	}
	n.paused = false
}

// term sends SIGTERM and returns how long the process took to exit and its
// exit code; it kills the process after wait.
func (n *node) term(wait time.Duration) (time.Duration, int, error) {
	p := n.cur()
	if p == nil || p.exited() {
		return 0, 0, fmt.Errorf("%s is not running", n.id)
	}
	p.expected = true
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, 0, err
	}
	select {
	case <-p.done:
		return time.Since(start), p.state.ExitCode(), nil
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), -1, fmt.Errorf("%s still running %v after SIGTERM", n.id, wait)
	}
}

// cluster is a set of nodes started by one test, with one operator session.
type cluster struct {
	t      testing.TB
	bin    string // the lintel binary, lintelBin when empty
	dir    string
	nodes  []*node
	client *http.Client
	token  string
	scheme string // "http" unless the nodes serve HTTPS (withSiteCert)
}

// url is where the console and API of n are reached.
func (c *cluster) url(n *node) string {
	if c.scheme != "" {
		return c.scheme + "://" + n.http
	}
	return "http://" + n.http
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
}

// newCluster makes the nodes' directories and ports; nothing runs yet.
func newCluster(t testing.TB, size int) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	tr := newTransport()
	c.client = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	for i := 1; i <= size; i++ {
		id := fmt.Sprintf("node%d", i)
		n := &node{c: c, id: id, dir: filepath.Join(c.dir, id), logPath: filepath.Join(c.dir, id+".log"),
			building: "Building " + strconv.Itoa(i), logLevel: "info"}
		n.http = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		n.raft = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		n.gossip = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		n.readers = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		// Every test ends with its nodes holding the same state.
		if !t.Failed() && !t.Skipped() {
			c.checkSameState()
		}
		for _, n := range c.nodes {
			for _, p := range n.procs {
				if p.exited() && !p.expected {
					t.Errorf("%s exited on its own: %v", n.id, p.state)
				}
			}
			n.kill()
		}
		tr.CloseIdleConnections()
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("---- last lines of %s (%s):\n%s", n.id, n.logPath, tail(n.logPath, 60))
				if d := os.Getenv("LINTEL_KEEP_LOGS"); d != "" {
					os.MkdirAll(d, 0o755)
					b, _ := os.ReadFile(n.logPath)
					os.WriteFile(filepath.Join(d, n.id+".log"), b, 0o644)
					exec.Command("cp", "-a", n.dir, filepath.Join(d, n.id)).Run()
				}
			}
		}
	})
	return c
}

// startCluster starts size nodes joined through the first one's gossip,
// logs in, and waits until every node sees the same leader and all voters.
func startCluster(t testing.TB, size int) *cluster {
	t.Helper()
	c := newCluster(t, size)
	startNodes(c)
	return c
}

// startNodes starts the nodes of a cluster made with newCluster (which a
// test may prepare first, e.g. a data dir on a small file system).
func startNodes(c *cluster) {
	t := c.t
	t.Helper()
	first := c.nodes[0]
	first.start("")
	c.waitHealthy(first, 20*time.Second)
	for _, n := range c.nodes[1:] {
		n.start(first.gossip)
	}
	for _, n := range c.nodes[1:] {
		c.waitHealthy(n, 20*time.Second)
	}
	// Logging in before the cluster is initialized counts as a failed
	// login and gets throttled, so wait for ready first.
	c.waitReady(first, 20*time.Second)
	c.login(first, 20*time.Second)
	voters := len(c.nodes)
	if voters%2 == 0 {
		voters--
	}
	c.waitFormed(c.nodes, min(voters, 5), 30*time.Second)
	c.waitSession(c.nodes, 10*time.Second)
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	if err := poll(timeout, 50*time.Millisecond, f); err != nil {
		t.Fatalf("%s: not done after %v: %v", what, timeout, err)
	}
}

func poll(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(every)
	}
}

// resp is an HTTP answer read in full.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r *resp) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// errCode is the API's error code, empty when the body is not an error.
func (r *resp) errCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r *resp) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("decode %s: %w", r, err)
	}
	return nil
}

// do sends one request to n with the cluster's session; hdr is name, value pairs.
func (c *cluster) do(n *node, method, path string, body any, hdr ...string) (*resp, error) {
	return c.doWith(context.Background(), c.client, n, method, path, body, hdr...)
}

func (c *cluster) doWith(ctx context.Context, cl *http.Client, n *node, method, path string, body any, hdr ...string) (*resp, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(n)+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &resp{status: res.StatusCode, header: res.Header, body: b}, nil
}

// expect fails unless the answer has the wanted status.
func (c *cluster) expect(n *node, want int, method, path string, body any, hdr ...string) *resp {
	c.t.Helper()
	r, err := c.do(n, method, path, body, hdr...)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, n, err)
	}
	if r.status != want {
		c.t.Fatalf("%s %s on %s: got %s, want %d", method, path, n, r, want)
	}
	return r
}

func (c *cluster) waitHealthy(n *node, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, n.id+" serving /healthz", func() error {
		if p := n.cur(); p != nil && p.exited() {
			c.t.Fatalf("%s exited while starting: %v\n%s", n.id, p.state, tail(n.logPath, 30))
		}
		r, err := c.do(n, "GET", "/healthz", nil)
		if err != nil {
			return err
		}
		if r.status != 200 {
			return errors.New(r.String())
		}
		return nil
	})
}

func (c *cluster) ready(n *node) error {
	r, err := c.do(n, "GET", "/readyz", nil)
	if err != nil {
		return err
	}
	if r.status != 200 {
		return fmt.Errorf("%s /readyz: %s", n, r)
	}
	return nil
}

func (c *cluster) waitReady(n *node, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, n.id+" ready", func() error { return c.ready(n) })
}

// login starts a session on n; sessions are replicated, so the token works
// on every node once applied there.
func (c *cluster) login(n *node, timeout time.Duration) {
	c.t.Helper()
	c.token = ""
	eventually(c.t, timeout, "login on "+n.id, func() error {
		req, _ := http.NewRequest("POST", c.url(n)+"/api/v1/session",
			strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, adminEmail, adminPassword)))
		req.Header.Set("Content-Type", "application/json")
		res, err := c.client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			return fmt.Errorf("%d %s", res.StatusCode, b)
		}
		for _, ck := range res.Cookies() {
			if ck.Name == "lintel_session" && ck.Value != "" {
				c.token = ck.Value
				return nil
			}
		}
		return fmt.Errorf("no lintel_session cookie in %v", res.Header)
	})
}

// waitSession waits until the session is applied on every given node.
func (c *cluster) waitSession(nodes []*node, timeout time.Duration) {
	c.t.Helper()
	for _, n := range nodes {
		eventually(c.t, timeout, "session known on "+n.id, func() error {
			r, err := c.do(n, "GET", "/api/v1/session", nil)
			if err != nil {
				return err
			}
			if r.status != 200 {
				return errors.New(r.String())
			}
			return nil
		})
	}
}

type nodeView struct {
	ID           string     `json:"id"`
	Building     string     `json:"building"`
	HTTPAddr     string     `json:"http_addr"`
	RaftAddr     string     `json:"raft_addr"`
	GossipAddr   string     `json:"gossip_addr"`
	Suffrage     string     `json:"suffrage"`
	RaftState    string     `json:"raft_state"`
	GossipState  string     `json:"gossip_state"`
	AppliedIndex uint64     `json:"applied_index"`
	LastContact  *time.Time `json:"last_contact"`
}

type clusterView struct {
	Leader string     `json:"leader"`
	Term   uint64     `json:"term"`
	Nodes  []nodeView `json:"nodes"`
}

func (v clusterView) node(id string) (nodeView, bool) {
	for _, n := range v.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return nodeView{}, false
}

func (c *cluster) view(n *node) (clusterView, error) {
	var v clusterView
	r, err := c.do(n, "GET", "/api/v1/cluster", nil)
	if err != nil {
		return v, err
	}
	if r.status != 200 {
		return v, fmt.Errorf("GET /api/v1/cluster on %s: %s", n, r)
	}
	return v, r.decode(&v)
}

func ids(nodes []*node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.id)
	}
	sort.Strings(out)
	return out
}

// checkFormed reports why the cluster as seen from each of nodes is not yet
// exactly those nodes, all alive, with voters voters and one agreed leader.
func (c *cluster) checkFormed(nodes []*node, voters int) (string, error) {
	leader := ""
	for _, n := range nodes {
		v, err := c.view(n)
		if err != nil {
			return "", err
		}
		var got []string
		nv, leaders := 0, 0
		for _, x := range v.Nodes {
			got = append(got, x.ID)
			if x.Suffrage == "voter" {
				nv++
			}
			if x.RaftState == "leader" {
				leaders++
			}
			if x.GossipState != "alive" {
				return "", fmt.Errorf("on %s: %s is %s in gossip", n, x.ID, x.GossipState)
			}
		}
		sort.Strings(got)
		switch {
		case !slices.Equal(got, ids(nodes)):
			return "", fmt.Errorf("on %s: nodes %v, want %v", n, got, ids(nodes))
		case nv != voters:
			return "", fmt.Errorf("on %s: %d voters, want %d: %+v", n, nv, voters, v.Nodes)
		case leaders != 1:
			return "", fmt.Errorf("on %s: %d nodes say they lead: %+v", n, leaders, v.Nodes)
		case v.Leader == "":
			return "", fmt.Errorf("on %s: no leader", n)
		case leader != "" && v.Leader != leader:
			return "", fmt.Errorf("%s sees leader %s, another node sees %s", n, v.Leader, leader)
		}
		if ln, _ := v.node(v.Leader); ln.RaftState != "leader" {
			return "", fmt.Errorf("on %s: leader %s has raft_state %q", n, v.Leader, ln.RaftState)
		}
		leader = v.Leader
	}
	return leader, nil
}

func (c *cluster) waitFormed(nodes []*node, voters int, timeout time.Duration) string {
	c.t.Helper()
	var leader string
	eventually(c.t, timeout, "cluster formed", func() error {
		var err error
		leader, err = c.checkFormed(nodes, voters)
		return err
	})
	return leader
}

func (c *cluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %q in this cluster", id)
	return nil
}

// leader asks a running node who leads, and waits until some node does.
func (c *cluster) leader(timeout time.Duration) *node {
	c.t.Helper()
	var id string
	eventually(c.t, timeout, "a leader", func() error {
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			v, err := c.view(n)
			if err == nil && v.Leader != "" {
				if ln, ok := v.node(v.Leader); ok && ln.RaftState == "leader" {
					id = v.Leader
					return nil
				}
			}
		}
		return errors.New("no node knows a leader")
	})
	return c.byID(id)
}

func (c *cluster) followers(leader *node) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n != leader && n.running() {
			out = append(out, n)
		}
	}
	return out
}

type site struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// createSite posts one site; key, when set, is its Idempotency-Key.
func (c *cluster) createSite(n *node, name, key string) (*resp, error) {
	var hdr []string
	if key != "" {
		hdr = []string{"Idempotency-Key", key}
	}
	return c.do(n, "POST", "/api/v1/sites", map[string]string{"name": name}, hdr...)
}

func (c *cluster) mustCreateSite(n *node, name string) site {
	c.t.Helper()
	var s site
	r := c.expect(n, 201, "POST", "/api/v1/sites", map[string]string{"name": name})
	if err := r.decode(&s); err != nil {
		c.t.Fatal(err)
	}
	if s.ID == "" || s.Name != name {
		c.t.Fatalf("created site %s: got %+v", name, s)
	}
	return s
}

// writeUntilAccepted sends the same write (same name and Idempotency-Key)
// through n until it is acknowledged; it returns the site and when.
func (c *cluster) writeUntilAccepted(n *node, name string, timeout, pause time.Duration) (site, time.Time, error) {
	var s site
	key := "retry-" + name
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		r, err := c.createSite(n, name, key)
		switch {
		case err != nil:
			last = err.Error()
		case r.status == 201:
			return s, time.Now(), r.decode(&s)
		default:
			last = r.String()
		}
		time.Sleep(pause)
	}
	return s, time.Time{}, fmt.Errorf("write %q through %s not accepted within %v; last answer: %s", name, n, timeout, last)
}

// sites lists every site n holds, following cursors.
func (c *cluster) sites(n *node, strong bool) (map[string]string, error) {
	out := map[string]string{}
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if strong {
			q.Set("consistency", "strong")
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r, err := c.do(n, "GET", "/api/v1/sites?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		if r.status != 200 {
			return nil, fmt.Errorf("list sites on %s: %s", n, r)
		}
		var page struct {
			Items      []site `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := r.decode(&page); err != nil {
			return nil, err
		}
		for _, s := range page.Items {
			out[s.ID] = s.Name
		}
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// missing lists the sites of want that have lacks, as "id (name)".
func missing(want map[string]string, have map[string]string) []string {
	var out []string
	for id, name := range want {
		if have[id] != name {
			out = append(out, id+" ("+name+")")
		}
	}
	sort.Strings(out)
	return out
}

// metric reads one unlabelled sample from n's /metrics.
func (c *cluster) metric(n *node, name string) (float64, error) {
	r, err := c.do(n, "GET", "/metrics", nil)
	if err != nil {
		return 0, err
	}
	if r.status != 200 {
		return 0, fmt.Errorf("/metrics on %s: %s", n, r)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics of %s", name, n)
}

// waitPeersSaved waits until every node has written the gossip addresses of
// all the others to peers.json, which a restart without --join relies on.
func (c *cluster) waitPeersSaved(timeout time.Duration) {
	c.t.Helper()
	for _, n := range c.nodes {
		var want []string
		for _, o := range c.nodes {
			if o != n {
				want = append(want, o.gossip)
			}
		}
		eventually(c.t, timeout, n.id+" peers.json", func() error {
			b, err := os.ReadFile(filepath.Join(n.dir, "peers.json"))
			if err != nil {
				return err
			}
			var got []string
			if err := json.Unmarshal(b, &got); err != nil {
				return err
			}
			for _, w := range want {
				if !slices.Contains(got, w) {
					return fmt.Errorf("peers.json has %v, want %v", got, want)
				}
			}
			return nil
		})
	}
}

// runLintel runs the binary to completion (or kills it after timeout) and
// returns its exit code and output.
func runLintel(t testing.TB, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, lintelBin, args...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return -1, out.String(), errb.String()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run lintel %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
