package pki

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A join token lets a new building into the cluster once: its secret
// proves to the cluster that an administrator let it in, and the CA
// fingerprint it carries lets the new node check, before it sends the
// secret, that it speaks to this cluster and not to whoever answered at
// the address (kubeadm's token and discovery hash in one string):
//
//	lintel-join-1.SECRET.HEX
//
// SECRET is 160 random bits in lower-case base32 (32 characters), HEX the
// 64 hex digits of the CA's SHA-256 fingerprint (Fingerprint without
// "sha256:").
const tokenPrefix = "lintel-join-1."

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// JoinToken is a parsed join token.
type JoinToken struct {
	Secret        string // what the joiner presents
	CAFingerprint string // "sha256:…", what the joiner expects
}

// NewJoinToken makes a token for the CA.
func NewJoinToken(ca *CA) (JoinToken, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return JoinToken{}, err
	}
	return JoinToken{Secret: tokenEncoding.EncodeToString(b[:]), CAFingerprint: Fingerprint(ca.Cert)}, nil
}

// String is the token as an administrator copies it.
func (t JoinToken) String() string {
	return tokenPrefix + t.Secret + "." + strings.TrimPrefix(t.CAFingerprint, "sha256:")
}

// ParseJoinToken reads a token, saying what is wrong with a bad one.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, tokenPrefix) {
		return JoinToken{}, errors.New("a join token starts with " + tokenPrefix + ": copy it whole from the node that made it (DATA_DIR/join-token)")
	}
	secret, fp, ok := strings.Cut(strings.TrimPrefix(s, tokenPrefix), ".")
	if !ok {
		return JoinToken{}, errors.New("the join token is cut short: copy it whole")
	}
	if b, err := tokenEncoding.DecodeString(secret); err != nil || len(b) != 20 {
		return JoinToken{}, errors.New("the join token's secret is damaged: copy it whole")
	}
	if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size || fp != strings.ToLower(fp) {
		return JoinToken{}, fmt.Errorf("the join token's CA fingerprint is damaged (%d characters, want 64 hex digits): copy it whole", len(fp))
	}
	return JoinToken{Secret: secret, CAFingerprint: "sha256:" + fp}, nil
}

// SecretHash is what the cluster keeps of a token's secret.
func SecretHash(secret string) string {
	sum := sha256.Sum256([]byte("lintel-join-token\n" + secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares a presented secret with the kept hash in constant time.
func SecretMatches(secret, hash string) bool {
	h := SecretHash(secret)
	return len(hash) == len(h) && subtle.ConstantTimeCompare([]byte(h), []byte(hash)) == 1
}

// JoinProof is what a joiner sends instead of the token's secret: an HMAC,
// keyed by what the cluster keeps of the secret, of the TLS session's
// exported keying material. It proves the joiner holds the token, cannot be
// replayed on another session, and tells a listener nothing of the secret.
func JoinProof(secretHash string, ekm []byte) string {
	m := hmac.New(sha256.New, []byte(secretHash))
	m.Write([]byte("lintel-join-proof\n"))
	m.Write(ekm)
	return hex.EncodeToString(m.Sum(nil))
}

// JoinProofMatches checks a proof in constant time.
func JoinProofMatches(proof, secretHash string, ekm []byte) bool {
	want := JoinProof(secretHash, ekm)
	return len(proof) == len(want) && subtle.ConstantTimeCompare([]byte(proof), []byte(want)) == 1
}

// EKMLabel names the keying material both ends of a join export.
const EKMLabel = "EXPORTER-lintel-join"
