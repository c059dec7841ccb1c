package replication

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"lintel/pki"
)

// ProtoJoin is the ALPN name of the join exchange on the gossip port.
const ProtoJoin = "lintel-join/1"

// maxJoinMessage bounds either side's message; a request is a few hundred bytes.
const maxJoinMessage = 64 << 10

// JoinRequest is what a node that is not yet a member sends. Proof shows it
// holds the join token (pki.JoinProof over this TLS session); Possession is
// its new key's signature over the same session, so the certificate it gets
// is for a key it holds.
type JoinRequest struct {
	NodeID     string   `json:"node_id"`
	Instance   string   `json:"instance"`
	Hosts      []string `json:"hosts"`
	PublicKey  []byte   `json:"public_key"` // PKIX DER
	Proof      string   `json:"proof"`
	Possession []byte   `json:"possession"`
}

// JoinAnswer is the cluster's answer: the node's certificate, the CA's, and
// the gossip key; or why not.
type JoinAnswer struct {
	Cert      []byte       `json:"cert,omitempty"` // PEM
	CA        []byte       `json:"ca,omitempty"`   // PEM
	GossipKey []byte       `json:"gossip_key,omitempty"`
	Members   []JoinMember `json:"members,omitempty"`
	Error     *JoinError   `json:"error,omitempty"`
}

// JoinMember is a member as the cluster recorded it when it let the joiner
// in: until its replica holds the state, the joiner admits these only.
type JoinMember struct {
	NodeID   string `json:"node_id"`
	Instance string `json:"instance"`
	Key      string `json:"key"`
}

// JoinError is a refusal. Final ones (a wrong token, a removed node) end
// the joiner's attempts; others (the cluster has no leader yet) are retried.
type JoinError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Final   bool   `json:"final"`
}

func (e *JoinError) Error() string { return e.Message }

// JoinServer answers join exchanges that the gossip port hands over.
type JoinServer struct {
	// Cert is this node's certificate followed by the CA's (nil until it has one).
	Cert func() *tls.Certificate
	// Admit decides a checked request: ekm is the session's keying material
	// (for the proof), pub the requester's key.
	Admit func(ctx context.Context, req JoinRequest, pub crypto.PublicKey, ekm []byte) JoinAnswer
	Log   func(msg string, args ...any)

	mu     sync.Mutex
	limits map[string]*rate.Limiter
}

// joinRate: a host may try a few joins, then one a second: guessing tokens
// (160 bits) is hopeless anyway, but each try costs a handshake.
const (
	joinRate  = 1
	joinBurst = 5
	maxHosts  = 4096
)

func (s *JoinServer) allow(addr net.Addr) bool {
	host := hostOf(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits == nil || len(s.limits) >= maxHosts {
		s.limits = map[string]*rate.Limiter{}
	}
	l, ok := s.limits[host]
	if !ok {
		l = rate.NewLimiter(joinRate, joinBurst)
		s.limits[host] = l
	}
	return l.Allow()
}

// hostOf keys limits by host, an IPv6 host by its /64.
func hostOf(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if t.IP.To4() == nil && len(t.IP) == net.IPv6len {
		return t.IP.Mask(net.CIDRMask(64, 128)).String()
	}
	return t.IP.String()
}

// Serve runs one exchange on a connection that opened with a TLS handshake.
func (s *JoinServer) Serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if !s.allow(c.RemoteAddr()) {
		return
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ProtoJoin},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.Cert(); c != nil {
				return c, nil
			}
			return nil, errors.New("this node has no certificate yet")
		},
	}
	tc := tls.Server(c, cfg)
	if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol != ProtoJoin {
		return
	}
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(pki.EKMLabel, nil, 32)
	if err != nil {
		return
	}
	var req JoinRequest
	ans := JoinAnswer{}
	if err := json.NewDecoder(io.LimitReader(tc, maxJoinMessage)).Decode(&req); err != nil {
		ans.Error = &JoinError{Code: "malformed_json", Message: "the join request is not valid JSON: " + err.Error(), Final: true}
	} else if pub, err := checkPossession(req, ekm); err != nil {
		ans.Error = &JoinError{Code: "invalid_join", Message: err.Error(), Final: true}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ans = s.Admit(ctx, req, pub, ekm)
		cancel()
	}
	if ans.Error != nil && s.Log != nil {
		s.Log("join refused", "from", c.RemoteAddr().String(), "node", req.NodeID, "code", ans.Error.Code)
	}
	json.NewEncoder(tc).Encode(ans)
}

func possessionDigest(ekm []byte) []byte {
	sum := sha256.Sum256(append([]byte("lintel-join-possession\n"), ekm...))
	return sum[:]
}

func checkPossession(req JoinRequest, ekm []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("the join request's public key cannot be read: %v", err)
	}
	if !pki.VerifyDigest(pub, possessionDigest(ekm), req.Possession) {
		return nil, errors.New("the join request is not signed by the key it names")
	}
	return pub, nil
}

// RequestJoin asks the node at a gossip address to let this node in. The
// answering node must prove it is of the cluster the token names before
// anything is sent; the token's secret itself never leaves this node.
func RequestJoin(ctx context.Context, addr string, token pki.JoinToken, req JoinRequest, key crypto.Signer) (JoinAnswer, error) {
	var ans JoinAnswer
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ans, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(20 * time.Second))
	}
	cfg := pki.PinnedConfig(token.CAFingerprint)
	cfg.NextProtos = []string{ProtoJoin}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if errors.Is(err, pki.ErrOtherCluster) {
			return ans, &JoinError{Code: "other_cluster", Message: fmt.Sprintf("%s: %v: check --join and --join-token", addr, pki.ErrOtherCluster), Final: true}
		}
		return ans, err
	}
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(pki.EKMLabel, nil, 32)
	if err != nil {
		return ans, err
	}
	if req.PublicKey, err = x509.MarshalPKIXPublicKey(key.Public()); err != nil {
		return ans, err
	}
	req.Proof = pki.JoinProof(pki.SecretHash(token.Secret), ekm)
	if req.Possession, err = key.Sign(rand.Reader, possessionDigest(ekm), crypto.SHA256); err != nil {
		return ans, err
	}
	if err := json.NewEncoder(tc).Encode(req); err != nil {
		return ans, err
	}
	br := bufio.NewReader(io.LimitReader(tc, maxJoinMessage))
	if err := json.NewDecoder(br).Decode(&ans); err != nil {
		return ans, fmt.Errorf("%s gave no answer to the join: %w", addr, err)
	}
	if ans.Error != nil {
		return ans, ans.Error
	}
	return ans, nil
}
