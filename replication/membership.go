// Package replication is everything that is not consensus: memberlist finds
// and watches the nodes, and the Forwarder carries a write from the node a
// client reached to the leader.
package replication

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Meta is what every node tells the others about itself through gossip.
type Meta struct {
	ID       string `json:"id"`
	Instance string `json:"inst"` // the data dir's identity: a fresh data dir is a new instance
	Building string `json:"b"`
	Raft     string `json:"raft"`
	HTTP     string `json:"http"`
	Readers  string `json:"rd"`
	Gossip   string `json:"g"`
	Version  string `json:"v"`
	// Commands is the newest command type the node's build knows.
	Commands uint8 `json:"cmd,omitempty"`
	// Leaving is gossiped just before a clean stop: memberlist's leave event
	// does not tell a node that left from one that died.
	Leaving bool `json:"leaving,omitempty"`
}

// Member is a node as gossip sees it.
type Member struct {
	Meta
	State string // alive, suspect, dead, left
}

// MembershipConfig starts gossip on one node.
type MembershipConfig struct {
	Meta      Meta
	Bind      string // host:port, TCP and UDP
	Advertise string // host:port others use; Bind when empty
	// Key encrypts and authenticates gossip (16, 24 or 32 bytes): the
	// cluster's, or, on a node that has not joined yet, one of its own
	// that nobody shares (SetKey installs the cluster's).
	Key []byte
	// OnJoinConn, when set, takes the TCP connections to the gossip port
	// that open with a TLS handshake: the join exchange of a new node.
	OnJoinConn func(net.Conn)
	LogOutput  io.Writer
	Debug      bool
	// OnChange is called (without blocking) whenever a member joins, leaves or changes.
	OnChange func()
}

// Membership is this node's view of the cluster through memberlist.
type Membership struct {
	ml       *memberlist.Memberlist
	cfg      MembershipConfig
	mu       sync.Mutex
	meta     Meta
	gone     bool              // left or shut down: memberlist panics on a second Leave
	known    map[string]Member // every node seen, with the last state gossip reported
	onChange func()
	keyring  *memberlist.Keyring
}

// RotateKey makes key the gossip key and drops the others after grace:
// meanwhile nodes that have not applied the rotation yet are still heard.
func (m *Membership) RotateKey(key []byte, grace time.Duration) error {
	if err := m.keyring.AddKey(key); err != nil {
		return err
	}
	if err := m.keyring.UseKey(key); err != nil {
		return err
	}
	time.AfterFunc(grace, func() {
		if !bytes.Equal(m.keyring.GetPrimaryKey(), key) {
			return // rotated again since
		}
		for _, k := range m.keyring.GetKeys() {
			if !bytes.Equal(k, key) {
				m.keyring.RemoveKey(k)
			}
		}
	})
	return nil
}

// SetKey makes key the only gossip key: a node that has just been let in
// replaces its own with the cluster's.
func (m *Membership) SetKey(key []byte) error {
	if err := m.keyring.AddKey(key); err != nil {
		return err
	}
	if err := m.keyring.UseKey(key); err != nil {
		return err
	}
	for _, k := range m.keyring.GetKeys() {
		if !bytes.Equal(k, key) {
			m.keyring.RemoveKey(k)
		}
	}
	return nil
}

// ParseGossipKey decodes a --gossip-key value.
func ParseGossipKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key is not base64: %v", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("gossip key is %d bytes; it must be 16, 24 or 32 bytes (make one with: head -c 32 /dev/urandom | base64)", len(k))
}

// StartMembership starts gossip. It does not join anyone yet.
func StartMembership(c MembershipConfig) (*Membership, error) {
	m := &Membership{cfg: c, meta: c.Meta, known: map[string]Member{}, onChange: c.OnChange}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Meta.ID
	host, port, err := splitHostPort(c.Bind)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", c.Bind, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	adv := c.Advertise
	if adv == "" {
		adv = c.Bind
	}
	ahost, aport, err := splitHostPort(adv)
	if err != nil {
		return nil, fmt.Errorf("gossip advertise address %q: %w", adv, err)
	}
	if ip := net.ParseIP(ahost); ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("gossip advertise address %q is not an IP address other nodes can reach; set --advertise-gossip to this node's IP and port", adv)
	}
	mc.AdvertiseAddr, mc.AdvertisePort = ahost, aport
	kr, err := memberlist.NewKeyring(nil, c.Key)
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	mc.Keyring = kr
	m.keyring = kr
	// A building that comes back on a new address takes its name back quickly.
	mc.DeadNodeReclaimTime = 5 * time.Second
	out := c.LogOutput
	if out == nil {
		out = io.Discard
	}
	mc.Logger = log.New(&levelFilter{w: out, debug: c.Debug}, "memberlist: ", 0)
	mc.Delegate = &delegate{m: m}
	mc.Events = &events{m: m}
	tr, err := newSniffTransport(mc, c.OnJoinConn)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", c.Bind, err)
	}
	mc.Transport = tr
	ml, err := memberlist.Create(mc)
	if err != nil {
		tr.Shutdown()
		return nil, fmt.Errorf("start gossip on %s: %w", c.Bind, err)
	}
	m.ml = ml
	// The address gossip really advertises (a port 0 became a real port).
	m.mu.Lock()
	m.meta.Gossip = ml.LocalNode().Address()
	m.mu.Unlock()
	if err := ml.UpdateNode(time.Second); err != nil {
		ml.Shutdown()
		return nil, err
	}
	return m, nil
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return h, n, nil
}

// Join contacts the given gossip addresses; it succeeds if any answers.
func (m *Membership) Join(addrs []string) (int, error) {
	m.mu.Lock()
	gone := m.gone
	m.mu.Unlock()
	if len(addrs) == 0 || gone {
		return 0, nil
	}
	return m.ml.Join(addrs)
}

// Members returns every node gossip has seen, sorted by id.
func (m *Membership) Members() []Member {
	live := map[string]*memberlist.Node{}
	for _, n := range m.ml.Members() {
		live[n.Name] = n
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Member
	for id, k := range m.known {
		if n, ok := live[id]; ok {
			k.State = stateName(n.State)
		}
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member returns one node's gossip view.
func (m *Membership) Member(id string) (Member, bool) {
	for _, x := range m.Members() {
		if x.ID == id {
			return x, true
		}
	}
	return Member{}, false
}

// idByRaft names the member whose Raft address is addr ("" if none).
func (m *Membership) idByRaft(addr string) string {
	if m == nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, k := range m.known {
		if k.Raft == addr {
			return id
		}
	}
	return ""
}

// Forget drops a removed node from this node's view.
func (m *Membership) Forget(id string) {
	m.mu.Lock()
	delete(m.known, id)
	m.mu.Unlock()
}

// Leave tells the others this node is going, then stops gossip.
func (m *Membership) Leave(timeout time.Duration) error {
	if !m.markGone() {
		return nil
	}
	m.mu.Lock()
	m.meta.Leaving = true
	m.mu.Unlock()
	m.ml.UpdateNode(timeout / 2)
	err := m.ml.Leave(timeout)
	if serr := m.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops gossip without a goodbye (the others will see it dead).
func (m *Membership) Shutdown() error {
	if !m.markGone() {
		return nil
	}
	return m.ml.Shutdown()
}

// markGone reports whether this call is the first to stop gossip.
func (m *Membership) markGone() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := !m.gone
	m.gone = true
	return first
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateLeft:
		return "left"
	}
	return "dead"
}

func (m *Membership) record(n *memberlist.Node, st string) {
	var meta Meta
	if err := json.Unmarshal(n.Meta, &meta); err != nil || meta.ID == "" {
		return // not a lintel node, or an older format: ignore rather than guess
	}
	m.mu.Lock()
	if meta.Leaving && st == "alive" {
		st = "left"
	}
	m.known[n.Name] = Member{Meta: meta, State: st}
	m.mu.Unlock()
	if m.onChange != nil {
		m.onChange()
	}
}

type delegate struct{ m *Membership }

func (d *delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	b, _ := json.Marshal(d.m.meta)
	d.m.mu.Unlock()
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events must not block: memberlist calls it from its own goroutines.
type events struct{ m *Membership }

func (e *events) NotifyJoin(n *memberlist.Node)   { e.m.record(n, "alive") }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.m.record(n, "alive") }
func (e *events) NotifyLeave(n *memberlist.Node) {
	st := "dead"
	var meta Meta
	if json.Unmarshal(n.Meta, &meta) == nil && meta.Leaving {
		st = "left"
	}
	e.m.record(n, st)
}

// levelFilter drops memberlist's debug lines unless asked for.
type levelFilter struct {
	w     io.Writer
	debug bool
}

func (f *levelFilter) Write(p []byte) (int, error) {
	if !f.debug && bytes.Contains(p, []byte("[DEBUG]")) {
		return len(p), nil
	}
	return f.w.Write(p)
}

// Addr is the gossip address this node advertises.
func (m *Membership) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta.Gossip
}
