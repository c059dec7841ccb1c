// Package node is the building node: the composition root. It opens the
// parts in order (identity, Raft, gossip, HTTP), runs the leader loop, and
// closes them in reverse.
package node

import (
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
	VoucherIssuers  []string
	SMTP            string
	Demo            bool
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
