// Package node is the building node: the composition root. It opens the
// parts in order (identity, Raft, gossip, HTTP), runs the leader loop, and
// closes them in reverse.
package node

import (
	"context"
	"io"
	"time"

	"lintel/reader"
)

// Config is everything `lintel serve` takes (SPEC section 2).
type Config struct {
	DataDir         string
	NodeID          string
	Building        string
	HTTP            string
	Raft            string
	Gossip          string
	Readers         string
	AdvertiseHTTP   string
	AdvertiseRaft   string
	AdvertiseGossip string
	Join            []string
	AdminEmail      string
	AdminPassword   string
	GossipKey       string
	JoinToken       string // --join-token: needed the first time a node joins
	TLSCert, TLSKey string // --tls-cert, --tls-key: the site's own certificate for the console and API
	// CertLifetime of node certificates (pki.NodeLifetime when 0); tests shorten it.
	CertLifetime   time.Duration
	VoucherIssuers []string
	SMTP           string
	Demo           bool
	// DemoDriver, when set, runs once a new demo cluster is loaded: it makes
	// the demo's cards through the API and plays a phone (package demo).
	DemoDriver func(context.Context, DemoSetup)
	// Doors wires readers' relays and LEDs (--door); readers without
	// wiring log their unlocks.
	Doors            map[string]reader.RelayWiring
	LogLevel         string
	LogOutput        io.Writer
	Version          string
	ShutdownDeadline time.Duration
}

func (c Config) advertise(listen, adv string) string {
	if adv != "" {
		return adv
	}
	return listen
}
