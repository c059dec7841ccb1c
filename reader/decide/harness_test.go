package decide

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/consensus/state/voucher"
	"lintel/reader/exchange"
	"lintel/voucherkey"
)

// t0 is a Sunday; the harness clock advances one second per command.
var t0 = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// registry builds a state through real commands, as a node's log would.
type registry struct {
	tb  testing.TB
	s   *state.State
	idx uint64
	at  time.Time
}

func newRegistry(tb testing.TB, credits int64) *registry {
	r := &registry{tb: tb, s: state.New(), at: t0}
	r.must(&command.Init{AccountID: "acc", AccountName: "HQ", AccountKind: state.AccountEndCustomer, ProfileID: "prof",
		OperatorID: "op", Email: "admin@example.com", PasswordHash: "$2a$hash", ClusterSecret: bytes.Repeat([]byte{7}, 32)})
	key, err := voucherkey.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	r.must(&command.AddIssuer{KeyID: key.KeyID(), PublicKey: key.Public(), Name: "test issuer"})
	_, text := voucher.Issue(key, "acc", "v1", credits, t0)
	r.must(&command.LoadVoucher{AccountID: "acc", Voucher: text})
	return r
}

func (r *registry) apply(b command.Body) state.Result {
	r.tb.Helper()
	r.idx++
	r.at = r.at.Add(time.Second)
	c := command.Command{Header: command.Header{RequestID: fmt.Sprintf("req-%d", r.idx), Actor: "op", At: r.at}, Body: b}
	res, _ := r.s.Apply(r.idx, c)
	return res
}

func (r *registry) must(b command.Body) {
	r.tb.Helper()
	if res := r.apply(b); res.Err != nil {
		r.tb.Fatalf("%T rejected: %v", b, res.Err)
	}
}

// send and activate a card on phone p.
func (r *registry) activate(id string, p phone) {
	r.tb.Helper()
	r.send(id)
	r.must(&command.ActivateCard{LinkHash: "link-" + id, DeviceKey: p.public()})
}

func (r *registry) send(id string) {
	r.tb.Helper()
	r.must(&command.SendCard{ID: id, AccountID: "acc", LinkHash: "link-" + id, LinkExpires: r.at.Add(7 * 24 * time.Hour),
		Message: command.Message{ID: "m-" + id, To: id + "@example.com", Subject: "Your card", Body: "https://node/activate/link-" + id}})
}

type phone struct{ key *ecdsa.PrivateKey }

func newPhone(tb testing.TB) phone {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return phone{k}
}

func (p phone) public() []byte {
	b, _ := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	return b
}

func (p phone) sign(msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, p.key, sum[:])
}

// present runs the exchange: the reader's challenge, the phone's answer.
func present(tb testing.TB, readerID, siteID, cardID string, p phone) (exchange.Challenge, exchange.Presentation) {
	tb.Helper()
	ch := exchange.Challenge{Version: exchange.ProtocolVersion, ReaderID: readerID, SiteID: siteID}
	if _, err := rand.Read(ch.Nonce[:]); err != nil {
		tb.Fatal(err)
	}
	pr, err := exchange.Respond(ch, cardID, p.sign)
	if err != nil {
		tb.Fatal(err)
	}
	return ch, pr
}
