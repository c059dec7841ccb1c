package consensus

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// currency tracks how current this node's state is: the last moment at
// which it had applied everything the leader had committed as far as this
// node knew. Heartbeats alone say nothing about that: a node whose disk is
// full hears every heartbeat, applies nothing, and would keep deciding on a
// replica that no longer holds the latest revocations.
//
// Followers learn the leader's commit index from every AppendEntries (not
// from heartbeats, which carry none; the leader sends one at least every
// CommitTimeout); a leader samples its own commit index.
type currency struct {
	mu      sync.Mutex
	pending []commitSeen // commits known but not applied yet, oldest first
	asOf    time.Time
}

type commitSeen struct {
	index uint64
	at    time.Time
}

// maxPending bounds the list; a node that falls far behind keeps the oldest
// sample, which only makes it look staler than it is.
const maxPending = 1024

// seen records that the leader had committed index at time at, and whether
// applied already covers it.
func (c *currency) seen(index uint64, at time.Time, applied uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if index <= applied {
		// Current as of now; commits seen earlier and not applied yet stay
		// pending (a new leader's commit index may lag the old one's).
		if at.After(c.asOf) && (len(c.pending) == 0 || c.pending[0].index <= applied) {
			c.asOf = at
		}
		return
	}
	if n := len(c.pending); n > 0 && c.pending[n-1].index >= index {
		return // known already, at an earlier time
	}
	if len(c.pending) >= maxPending {
		// Keep the first sample; replace the newest.
		c.pending[len(c.pending)-1] = commitSeen{index, at}
		return
	}
	c.pending = append(c.pending, commitSeen{index, at})
}

// applied moves asOf to the newest commit the state now covers.
func (c *currency) applied(applied uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(c.pending) && c.pending[n].index <= applied {
		if c.pending[n].at.After(c.asOf) {
			c.asOf = c.pending[n].at
		}
		n++
	}
	if n > 0 {
		c.pending = append(c.pending[:0], c.pending[n:]...)
	}
}

func (c *currency) current() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asOf
}

// tapTransport passes every RPC to Raft and notes the leader's commit
// index carried by AppendEntries on the way.
//
// It also turns off Raft's heartbeat fast path. hashicorp/raft handles a
// heartbeat on the transport's goroutine, beside its main loop; one that
// carries a newer term sets the term there while a deposed leader's main
// loop may be appending: that leader then writes its client's entry with
// the new leader's term, and two nodes commit different entries at one
// index with one term (hashicorp/raft#695; the leader-freeze test
// reproduced it: a deposed leader woke to hold a command where the others
// held the new leader's no-op). Without a handler, NetworkTransport sends
// heartbeats to the consumer channel, and the main loop handles them with
// every other RPC. A check of the term before the fast path would leave a
// gap between that check and Raft's own.
type tapTransport struct {
	*raft.NetworkTransport
	ch   chan raft.RPC
	done chan struct{}
	once sync.Once
	raft atomic.Pointer[raft.Raft]
}

// guard lets the tap compare terms once Raft exists.
func (t *tapTransport) guard(r *raft.Raft) { t.raft.Store(r) }

// SetHeartbeatHandler installs no fast path (see tapTransport).
func (t *tapTransport) SetHeartbeatHandler(func(rpc raft.RPC)) {
	t.NetworkTransport.SetHeartbeatHandler(nil)
}

func newTap(t *raft.NetworkTransport, onAppend func(commit uint64)) *tapTransport {
	tp := &tapTransport{NetworkTransport: t, ch: make(chan raft.RPC), done: make(chan struct{})}
	go func() {
		for {
			select {
			case rpc := <-t.Consumer():
				if a, ok := rpc.Command.(*raft.AppendEntriesRequest); ok && a.LeaderCommitIndex > 0 {
					// A deposed leader's stale message says nothing of the cluster.
					if r := tp.raft.Load(); r == nil || a.Term >= r.CurrentTerm() {
						onAppend(a.LeaderCommitIndex)
					}
				}
				select {
				case tp.ch <- rpc:
				case <-tp.done:
					return
				}
			case <-tp.done:
				return
			}
		}
	}()
	return tp
}

func (t *tapTransport) Consumer() <-chan raft.RPC { return t.ch }

func (t *tapTransport) Close() error {
	t.once.Do(func() { close(t.done) })
	return t.NetworkTransport.Close()
}

// currentFile keeps asOf across restarts, so a node that restarts after a
// week away counts its offline grace from when it was last current, not
// from its start. Written at most every few seconds: an older time only
// makes the node look staler.
func loadCurrent(path string) time.Time {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 12 || crc32.ChecksumIEEE(b[:8]) != binary.BigEndian.Uint32(b[8:]) {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
}

func saveCurrent(path string, t time.Time) error {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	binary.BigEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[:8]))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b[:]); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
