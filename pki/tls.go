package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Admit decides whether a peer that presented a valid node certificate
// may speak: a removed node is refused from then on, whatever it holds.
type Admit func(Identity) error

// ServerConfig is the TLS configuration of a node's own listener for the
// other nodes: TLS 1.3, a client certificate signed by the cluster's CA
// required, and admit asked for its identity. cert gives the node's current
// certificate (it is renewed without a restart).
func ServerConfig(pool *x509.CertPool, cert func() *tls.Certificate, admit Admit) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        pool,
		GetCertificate:   func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current(cert) },
		VerifyConnection: func(cs tls.ConnectionState) error { return checkPeer(cs, admit) },
	}
}

// ClientConfig is the TLS configuration a node dials the others with: the
// server must present a certificate of the cluster's CA for the node id the
// dialer meant (want; "" for any member), and admit is asked for it too.
func ClientConfig(pool *x509.CertPool, cert func() *tls.Certificate, want string, admit Admit) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The name is checked against the identity below, not DNS: nodes
		// are reached at addresses that change, and the identity does not.
		InsecureSkipVerify:   true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return current(cert) },
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the peer presented no certificate")
			}
			if err := verifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageServerAuth); err != nil {
				return err
			}
			id, err := identityOfPeer(cs)
			if err != nil {
				return err
			}
			if want != "" && id.NodeID != want {
				return fmt.Errorf("the peer is node %s, not %s", id.NodeID, want)
			}
			return admit(id)
		},
	}
}

// ErrOtherCluster: the node that answered a join is not of the cluster
// whose CA the join token names.
var ErrOtherCluster = errors.New("the node at that address belongs to another cluster (its certificate is not of the CA that the join token or activation link names)")

// PinnedConfig is what a joining node dials with before it has a
// certificate: the server's chain must end in a CA whose fingerprint is
// the one the join token carries.
func PinnedConfig(fingerprint string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // checked below, against the token's fingerprint
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) < 2 {
				return fmt.Errorf("%w: it did not present a CA", ErrOtherCluster)
			}
			ca := cs.PeerCertificates[len(cs.PeerCertificates)-1]
			if Fingerprint(ca) != fingerprint {
				return ErrOtherCluster
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			return verifyChain(cs.PeerCertificates[:len(cs.PeerCertificates)-1], pool, x509.ExtKeyUsageServerAuth)
		},
	}
}

// PinnedHostConfig is PinnedConfig that also wants the certificate to name
// host (an IP address or DNS name): a phone talks to the node its link
// names, not to whichever holder of a certificate of the CA answers.
func PinnedHostConfig(fingerprint, host string) *tls.Config {
	cfg := PinnedConfig(fingerprint)
	pinned := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := pinned(cs); err != nil {
			return err
		}
		if err := cs.PeerCertificates[0].VerifyHostname(host); err != nil {
			return fmt.Errorf("%w: %v", ErrOtherCluster, err)
		}
		return nil
	}
	return cfg
}

// current is the node's certificate now; crypto/tls must never be handed nil.
func current(cert func() *tls.Certificate) (*tls.Certificate, error) {
	if c := cert(); c != nil {
		return c, nil
	}
	return nil, errors.New("this node has no certificate yet")
}

func checkPeer(cs tls.ConnectionState, admit Admit) error {
	id, err := identityOfPeer(cs)
	if err != nil {
		return err
	}
	return admit(id)
}

func identityOfPeer(cs tls.ConnectionState) (Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return Identity{}, errors.New("the peer presented no certificate")
	}
	id, ok := IdentityOf(cs.PeerCertificates[0])
	if !ok {
		return Identity{}, errors.New("the peer's certificate names no node")
	}
	return id, nil
}

// verifyChain checks a leaf (and any intermediates after it) against pool,
// for the use the peer makes of it.
func verifyChain(chain []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return fmt.Errorf("the peer's certificate is not the cluster's: %w", err)
	}
	return nil
}
