package clustertests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"lintel/consensus/state/voucher"
	"lintel/voucherkey"
)

// TestMailExactlyOnceAcrossFailover: three nodes deliver activation
// messages through one relay; the leader is killed while the relay holds
// one of them. The new leader sends what is left and nothing twice: what the
// old leader delivered was committed before it moved on (node/DESIGN.md, "Mail").
func TestMailExactlyOnceAcrossFailover(t *testing.T) {
	const total, holdAt = 6, 3
	relay := startHoldingRelay(t, holdAt)
	c := startMailCluster(t, 3, relay.addr)
	c.waitPeersSaved(15 * time.Second)
	leader := c.leader(10 * time.Second)
	api := c.followers(leader)[0]

	siteID := c.mailSetup(api)
	for i := range total {
		var card struct {
			ID string `json:"id"`
		}
		body := fmt.Sprintf(`{"first_name":"Holder","last_name":"%d","email":"holder%d@example.com","reader_config":"London","private_id":"%d"}`, i, i, 100+i)
		if err := c.raw(api, 201, "POST", "/api/v1/sites/"+siteID+"/cards", body).decode(&card); err != nil {
			t.Fatal(err)
		}
		c.raw(api, 200, "POST", "/api/v1/cards/"+card.ID+"/send", "")
	}

	var sender string
	select {
	case sender = <-relay.held:
	case <-time.After(30 * time.Second):
		t.Fatalf("the relay never saw message %d; it accepted %d", holdAt, len(relay.accepted()))
	}
	// The node in the middle of a delivery is the leader; its id is in the envelope sender.
	victim := c.byID(strings.TrimSuffix(strings.TrimPrefix(sender, "lintel@"), ".local"))
	victim.kill()
	relay.release() // the relay refuses the held message: the session died before it was accepted
	t.Logf("killed %s while the relay held message %d", victim, holdAt)

	eventually(t, 60*time.Second, "every message delivered", func() error {
		if got := len(relay.accepted()); got < total {
			return fmt.Errorf("the relay accepted %d of %d", got, total)
		}
		return nil
	})
	victim.start("", "--smtp", relay.addr)
	c.waitReady(victim, 30*time.Second)
	var ids map[string]string // outbox id -> recipient
	for _, n := range c.nodes {
		eventually(t, 20*time.Second, "outbox all sent on "+n.id, func() error {
			var err error
			ids, err = c.outboxSent(n, total)
			return err
		})
	}
	time.Sleep(2 * time.Second) // a late duplicate would arrive by now

	seen := map[string]int{}
	for _, m := range relay.accepted() {
		seen[m.messageID+" "+strings.Join(m.to, ",")]++
	}
	if len(seen) != total || len(relay.accepted()) != total {
		t.Errorf("the relay accepted %d messages, %d distinct; want %d once each: %v", len(relay.accepted()), len(seen), total, seen)
	}
	for id, to := range ids {
		if k := seen["<"+id+"@outbox.lintel.local> "+to]; k != 1 {
			t.Errorf("message %s to %s received %d times, want once", id, to, k)
		}
	}
}

// holdingRelay is a real SMTP server that accepts every message but holds
// the holdAt-th one until the test releases it, then refuses it (451).
type holdingRelay struct {
	addr    string
	holdAt  int
	held    chan string // the held message's envelope sender
	rel     chan struct{}
	relOnce sync.Once
	mu      sync.Mutex
	datas   int
	got     []relayed
}

type relayed struct {
	messageID string
	to        []string
}

func startHoldingRelay(t *testing.T, holdAt int) *holdingRelay {
	t.Helper()
	r := &holdingRelay{holdAt: holdAt, held: make(chan string, 1), rel: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &holdingSession{r: r}, nil }))
	s.Domain = "relay.test"
	s.ReadTimeout, s.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() {
		r.release()
		s.Close()
	})
	return r
}

func (r *holdingRelay) release() { r.relOnce.Do(func() { close(r.rel) }) }

func (r *holdingRelay) accepted() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayed(nil), r.got...)
}

type holdingSession struct {
	r    *holdingRelay
	from string
	to   []string
}

func (s *holdingSession) Reset()        { s.from, s.to = "", nil }
func (s *holdingSession) Logout() error { return nil }
func (s *holdingSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *holdingSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *holdingSession) Data(rd io.Reader) error {
	raw, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.datas++
	hold := s.r.datas == s.r.holdAt
	s.r.mu.Unlock()
	if hold {
		s.r.held <- s.from
		<-s.r.rel
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "connection lost before the message was accepted"}
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.got = append(s.r.got, relayed{messageID: m.Header.Get("Message-ID"), to: s.to})
	s.r.mu.Unlock()
	return nil
}

// startMailCluster is startCluster with --smtp on every node.
func startMailCluster(t *testing.T, size int, smtpAddr string) *cluster {
	t.Helper()
	c := newCluster(t, size)
	first := c.nodes[0]
	first.start("", "--smtp", smtpAddr)
	c.waitHealthy(first, 20*time.Second)
	for _, n := range c.nodes[1:] {
		n.start(first.gossip, "--smtp", smtpAddr)
	}
	for _, n := range c.nodes[1:] {
		c.waitHealthy(n, 20*time.Second)
	}
	c.waitReady(first, 20*time.Second)
	c.login(first, 20*time.Second)
	c.waitFormed(c.nodes, size, 30*time.Second)
	c.waitSession(c.nodes, 10*time.Second)
	return c
}

// raw sends a body as is (a key file, a voucher, a reader configuration)
// and fails unless the answer has the wanted status.
func (c *cluster) raw(n *node, want int, method, path, body string) *resp {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url(n)+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, n, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := &resp{status: res.StatusCode, header: res.Header, body: b}
	if r.status != want {
		c.t.Fatalf("%s %s on %s: got %s, want %d", method, path, n, r, want)
	}
	return r
}

// mailSetup gives the account credits and makes a site with the reader
// configuration "London"; it returns the site id.
func (c *cluster) mailSetup(n *node) string {
	c.t.Helper()
	var sess struct {
		Account struct {
			ID string `json:"id"`
		} `json:"account"`
	}
	if err := c.raw(n, 200, "GET", "/api/v1/session", "").decode(&sess); err != nil {
		c.t.Fatal(err)
	}
	key, err := voucherkey.GenerateKey()
	if err != nil {
		c.t.Fatal(err)
	}
	c.raw(n, 201, "POST", "/api/v1/credits/issuers", string(voucher.MarshalPublicKey(key.Public())))
	_, v := voucher.Issue(key, sess.Account.ID, "mail-v1", 100, time.Now())
	c.raw(n, 200, "POST", "/api/v1/credits/vouchers", string(v))
	s := c.mustCreateSite(n, "Mail Site")
	c.raw(n, 201, "POST", "/api/v1/sites/"+s.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n")
	return s.ID
}

// outboxSent checks that n's own replica shows total messages, all sent,
// and returns their ids with their recipients.
func (c *cluster) outboxSent(n *node, total int) (map[string]string, error) {
	r, err := c.do(n, "GET", "/api/v1/outbox", nil)
	if err != nil {
		return nil, err
	}
	var v struct {
		Items []struct {
			ID     string `json:"id"`
			To     string `json:"to"`
			Status string `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 {
		return nil, fmt.Errorf("GET /api/v1/outbox on %s: %s", n, r)
	}
	ids := map[string]string{}
	for _, m := range v.Items {
		if m.Status != "sent" {
			return nil, fmt.Errorf("on %s message %s is %s", n, m.ID, m.Status)
		}
		ids[m.ID] = m.To
	}
	if len(ids) != total {
		return nil, fmt.Errorf("on %s the outbox has %d messages, want %d", n, len(ids), total)
	}
	return ids, nil
}
