package node_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"lintel/consensus/state"
	"lintel/consensus/state/voucher"
	"lintel/internal/testnode"
	"lintel/node"
	"lintel/voucherkey"
)

// relay is a real SMTP server (go-smtp) on loopback that keeps what it accepts.
type relay struct {
	addr   string
	mu     sync.Mutex
	refuse int // DATA commands still to answer 451
	tries  int // DATA commands seen
	got    []received
}

type received struct {
	from, messageID string
	to              []string
	body            string
	tls             bool // came over STARTTLS
}

// startRelay starts a relay that answers 451 to the first refuse messages;
// with tlsConf it offers STARTTLS.
func startRelay(t *testing.T, refuse int, tlsConf *tls.Config) *relay {
	t.Helper()
	r := &relay{refuse: refuse}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &relaySession{r: r, c: c}, nil }))
	s.Domain = "relay.test"
	s.TLSConfig = tlsConf
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return r
}

func (r *relay) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type relaySession struct {
	r    *relay
	c    *smtp.Conn
	from string
	to   []string
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(rd io.Reader) error {
	raw, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.tries++
	if s.r.refuse > 0 {
		s.r.refuse--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	body, err := decodeBody(m)
	if err != nil {
		return err
	}
	_, overTLS := s.c.TLSConnectionState()
	s.r.got = append(s.r.got, received{from: s.from, to: s.to, messageID: m.Header.Get("Message-ID"), body: body, tls: overTLS})
	return nil
}

// decodeBody undoes the transfer encoding of a single-part text message.
func decodeBody(m *mail.Message) (string, error) {
	if ct := m.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
			return "", fmt.Errorf("content type %q: want text/plain", ct)
		}
	}
	var rd io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		rd = quotedprintable.NewReader(m.Body)
	}
	b, err := io.ReadAll(rd)
	return string(b), err
}

type outboxItem struct {
	ID        string `json:"id"`
	To        string `json:"to"`
	Body      string `json:"body"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
	CardID    string `json:"card_id"`
}

func outbox(t *testing.T, c *testnode.Client) []outboxItem {
	t.Helper()
	r := c.Do(t, "GET", "/api/v1/outbox", "", nil)
	var v struct {
		Items []outboxItem `json:"items"`
	}
	if r.StatusCode != 200 || json.Unmarshal([]byte(r.Body), &v) != nil {
		t.Fatalf("GET /api/v1/outbox: %d %s", r.StatusCode, r.Body)
	}
	return v.Items
}

// must sends one request and decodes the answer, which must have status want.
func must(t *testing.T, c *testnode.Client, want int, method, path, body string, out any) {
	t.Helper()
	r := c.Do(t, method, path, body, nil)
	if r.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, path, r.StatusCode, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.Body), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, r.Body)
		}
	}
}

// mailSite gives the account credits and makes a site with the reader
// configuration "London"; it returns the site id.
func mailSite(t *testing.T, c *testnode.Client) string {
	t.Helper()
	var sess struct {
		Account struct {
			ID string `json:"id"`
		} `json:"account"`
	}
	must(t, c, 200, "GET", "/api/v1/session", "", &sess)
	key, err := voucherkey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	must(t, c, 201, "POST", "/api/v1/credits/issuers", string(voucher.MarshalPublicKey(key.Public())), nil)
	_, v := voucher.Issue(key, sess.Account.ID, "v1", 100, time.Now())
	must(t, c, 200, "POST", "/api/v1/credits/vouchers", string(v), nil)
	var site struct {
		ID string `json:"id"`
	}
	must(t, c, 201, "POST", "/api/v1/sites", `{"name":"Head Office"}`, &site)
	must(t, c, 201, "POST", "/api/v1/sites/"+site.ID+"/reader-configs", "lintel-reader-config 1\nname = London\n", nil)
	return site.ID
}

// sendCard creates a card for email and sends it; it returns the card id.
func sendCard(t *testing.T, c *testnode.Client, siteID, email, privateID string) string {
	t.Helper()
	var card struct {
		ID string `json:"id"`
	}
	body := fmt.Sprintf(`{"first_name":"Ada","last_name":"Lovelace","email":%q,"reader_config":"London","private_id":%q}`, email, privateID)
	must(t, c, 201, "POST", "/api/v1/sites/"+siteID+"/cards", body, &card)
	must(t, c, 200, "POST", "/api/v1/cards/"+card.ID+"/send", "", nil)
	return card.ID
}

func mailNode(t *testing.T, smtpAddr string) (*node.Node, *testnode.Client) {
	t.Helper()
	n := testnode.StartWith(t, "mail1", func(c *node.Config) { c.SMTP = smtpAddr })
	testnode.WaitReady(t, n)
	return n, testnode.Login(t, n)
}

var activationURL = regexp.MustCompile(`http://\S+/activate/\S+`)

func TestMailDeliversActivationOnce(t *testing.T) {
	r := startRelay(t, 0, nil)
	n, c := mailNode(t, r.addr)
	site := mailSite(t, c)
	cardID := sendCard(t, c, site, "ada@example.com", "1")

	testnode.Eventually(t, 10*time.Second, func() bool { return len(r.messages()) > 0 }, "the relay received nothing")
	var sent outboxItem
	testnode.Eventually(t, 5*time.Second, func() bool {
		items := outbox(t, c)
		if len(items) == 1 && items[0].Status == state.MessageSent {
			sent = items[0]
			return true
		}
		return false
	}, "the outbox never showed the message sent: %+v", outbox(t, c))
	time.Sleep(1500 * time.Millisecond) // a second delivery would have come by now
	got := r.messages()
	if len(got) != 1 {
		t.Fatalf("the relay received %d messages, want 1: %+v", len(got), got)
	}
	m := got[0]
	if m.tls {
		t.Fatal("the relay offers no STARTTLS, yet the session says TLS")
	}
	if len(m.to) != 1 || m.to[0] != "ada@example.com" {
		t.Fatalf("recipients %v, want ada@example.com", m.to)
	}
	if m.messageID != "<"+sent.ID+"@outbox.lintel.local>" {
		t.Fatalf("Message-ID %q is not derived from the message id %s", m.messageID, sent.ID)
	}
	if m.from != "lintel@mail1.local" {
		t.Fatalf("envelope sender %q", m.from)
	}
	link := activationURL.FindString(m.body)
	if !strings.HasPrefix(link, "http://"+n.Addr()+"/activate/") {
		t.Fatalf("no activation URL of this node in the body:\n%s", m.body)
	}
	// The link is the live one: its page answers (a GET does not use it up).
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", link, resp.StatusCode)
	}
	if sent.CardID != cardID || sent.Attempts != 1 || sent.Body != state.Redacted || strings.Contains(sent.Body, "/activate/") {
		t.Fatalf("outbox after delivery: %+v", sent)
	}
}

func TestMailRetriesRefusingRelay(t *testing.T) {
	r := startRelay(t, 2, nil)
	_, c := mailNode(t, r.addr)
	site := mailSite(t, c)
	sendCard(t, c, site, "grace@example.com", "2")

	// Backoff 1 s then 2 s: the third attempt goes through.
	testnode.Eventually(t, 15*time.Second, func() bool { return len(r.messages()) > 0 }, "never delivered after refusals")
	var sent outboxItem
	testnode.Eventually(t, 5*time.Second, func() bool {
		items := outbox(t, c)
		if len(items) == 1 && items[0].Status == state.MessageSent {
			sent = items[0]
			return true
		}
		return false
	}, "the outbox never showed the message sent")
	time.Sleep(1500 * time.Millisecond)
	r.mu.Lock()
	tries := r.tries
	r.mu.Unlock()
	if got := r.messages(); len(got) != 1 || tries != 3 {
		t.Fatalf("relay: %d accepted, %d DATA commands; want 1 accepted of 3", len(got), tries)
	}
	if sent.Attempts != 3 || sent.LastError != "" {
		t.Fatalf("outbox: %+v; want 3 attempts and no error left", sent)
	}
}

func TestMailEmailToSMS(t *testing.T) {
	r := startRelay(t, 0, nil)
	_, c := mailNode(t, r.addr)
	site := mailSite(t, c)
	sendCard(t, c, site, "5551234567@vtext.example", "3")

	testnode.Eventually(t, 10*time.Second, func() bool { return len(r.messages()) > 0 }, "the SMS gateway address received nothing")
	got := r.messages()
	if len(got) != 1 || len(got[0].to) != 1 || got[0].to[0] != "5551234567@vtext.example" {
		t.Fatalf("relay received %+v", got)
	}
	if !activationURL.MatchString(got[0].body) {
		t.Fatalf("no activation URL in the SMS body:\n%s", got[0].body)
	}
}

func TestMailWithoutRelayKeepsOutbox(t *testing.T) {
	_, c := mailNode(t, "")
	site := mailSite(t, c)
	sendCard(t, c, site, "ada@example.com", "4")
	time.Sleep(time.Second)
	items := outbox(t, c)
	if len(items) != 1 || items[0].Status != state.MessageQueued || items[0].Attempts != 0 || !activationURL.MatchString(items[0].Body) {
		t.Fatalf("without --smtp the message must wait in the outbox with its link: %+v", items)
	}
}

// selfSigned is the kind of certificate a LAN relay has: trusted by nobody.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.lan"}, DNSNames: []string{"relay.lan"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// A relay that offers STARTTLS with a self-signed certificate gets the
// message encrypted; one without STARTTLS (the other tests) gets it plain.
func TestMailStartTLSSelfSignedRelay(t *testing.T) {
	r := startRelay(t, 0, selfSigned(t))
	_, c := mailNode(t, r.addr)
	site := mailSite(t, c)
	sendCard(t, c, site, "ada@example.com", "5")
	testnode.Eventually(t, 10*time.Second, func() bool { return len(r.messages()) > 0 }, "nothing delivered to a STARTTLS relay: %+v", outbox(t, c))
	if m := r.messages()[0]; !m.tls {
		t.Fatal("the relay offered STARTTLS but the message came in plain text")
	}
}
