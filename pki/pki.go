// Package pki is the cluster's own certificate authority: the CA made at
// bootstrap, the certificates of the nodes, the join token that binds the
// CA's fingerprint, and the TLS configurations the node-to-node links use.
// Everything here is the standard library's crypto/x509 and crypto/tls; this
// package only decides what goes into a certificate and what a peer must
// present.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Lifetimes. A node renews its certificate when a third of its life is left.
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	NodeLifetime = 90 * 24 * time.Hour
	// clockSlack backdates a certificate's start: clocks of buildings differ.
	clockSlack = time.Hour
)

// CA is the cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a CA for the cluster named name: an ECDSA P-256 key (what
// every TLS stack and phone verifies fast) and a self-signed certificate.
func NewCA(name string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Lintel cluster CA " + name},
		NotBefore:             now.Add(-clockSlack),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// PEM returns the CA's certificate and key in PEM.
func (ca *CA) PEM() (certPEM, keyPEM []byte, err error) {
	kder, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// ParseCA reads a CA from PEM, checking that the key is the certificate's.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("the certificate is not a CA's")
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !samePublic(cert.PublicKey, key.Public()) {
		return nil, errors.New("the CA key does not match its certificate")
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Identity is what a node certificate says of its holder: the node id, and
// the data dir's instance, so that a node removed and later made afresh
// under the same id is told from the one removed.
type Identity struct {
	NodeID   string
	Instance string
	// Key is KeyFingerprint of the certificate's public key (set by
	// IdentityOf; Issue ignores it): members are recorded by it.
	Key string
}

// uri is the identity as the certificate's URI name.
func (id Identity) uri() *url.URL {
	return &url.URL{Scheme: "lintel", Host: "node", Path: "/" + id.NodeID, RawQuery: url.Values{"instance": {id.Instance}}.Encode()}
}

// IdentityOf reads the identity from a node certificate.
func IdentityOf(cert *x509.Certificate) (Identity, bool) {
	for _, u := range cert.URIs {
		if u.Scheme == "lintel" && u.Host == "node" && len(u.Path) > 1 {
			return Identity{NodeID: strings.TrimPrefix(u.Path, "/"), Instance: u.Query().Get("instance"), Key: Fingerprint(cert)}, true
		}
	}
	return Identity{}, false
}

// NewKey makes a node's private key.
func NewKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// Issue signs a certificate for pub: a node's, good for both ends of a TLS
// link, naming id and hosts (DNS names or IP addresses the node is reached
// at), valid from now (less the clock slack) for lifetime.
func (ca *CA) Issue(pub crypto.PublicKey, id Identity, hosts []string, now time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	if id.NodeID == "" || strings.ContainsAny(id.NodeID, "/?#") {
		return nil, fmt.Errorf("a node certificate needs a node id without / ? or #, not %q", id.NodeID)
	}
	if id.Instance == "" {
		return nil, errors.New("a node certificate needs the data dir's instance: without it a removed node cannot be told from a new one")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.NodeID},
		NotBefore:    now.Add(-clockSlack),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.uri()},
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // never outlive the CA
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Fingerprint names a CA to a node that has not joined yet: "sha256:" and
// the hex SHA-256 of its public key (SubjectPublicKeyInfo), as kubeadm's
// discovery hash does; it stays the same when the CA's certificate is
// renewed with the same key.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// VerifyDigest checks a signature (ASN.1) by a node key (ECDSA P-256) over a SHA-256 digest.
func VerifyDigest(pub crypto.PublicKey, digest, sig []byte) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && k.Curve == elliptic.P256() && ecdsa.VerifyASN1(k, digest, sig)
}

// KeyFingerprint is Fingerprint of a certificate for pub.
func KeyFingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ParseCert reads one PEM certificate.
func ParseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// CertPEM encodes a certificate in PEM.
func CertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// KeyPEM encodes a private key in PEM (PKCS #8).
func KeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a PEM private key (PKCS #8).
func ParseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("the key cannot sign")
	}
	return s, nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func samePublic(a, b crypto.PublicKey) bool {
	x, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && x.Equal(b)
}
