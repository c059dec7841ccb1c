package consensus

import (
	"errors"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// fsm adapts state.State to Raft: decode → dispatch → state, a batch at a time.
type fsm struct {
	mu      sync.RWMutex
	st      *state.State
	applied atomic.Uint64 // index of the last log the state reflects

	wmu    sync.Mutex
	notify chan struct{} // closed and replaced whenever applied moves

	observe func([]state.Change) // called after each batch, outside the lock
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(observe func([]state.Change)) *fsm {
	return &fsm{st: state.New(), notify: make(chan struct{}), observe: observe}
}

func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies the logs Raft hands over in one write lock.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var all []state.Change
	f.mu.Lock()
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			f.st.Index = l.Index
			continue
		}
		c, err := command.Decode(l.Data)
		switch {
		case errors.Is(err, command.ErrSkippable):
			f.st.Index = l.Index
			continue
		case err != nil:
			// Only a newer build writes what this one cannot read; say so loudly
			// and change nothing rather than guess.
			f.st.Index = l.Index
			out[i] = state.Result{Err: &state.Rejection{Kind: state.Invalid, Code: "undecodable_command", Message: err.Error()}}
			continue
		}
		res, ch := f.st.Apply(l.Index, c)
		out[i] = res
		all = append(all, ch...)
	}
	if n := len(logs); n > 0 {
		f.applied.Store(logs[n-1].Index)
	}
	f.mu.Unlock()
	f.wake()
	if f.observe != nil && len(all) > 0 {
		f.observe(all)
	}
	return out
}

func (f *fsm) wake() {
	f.wmu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.wmu.Unlock()
}

func (f *fsm) waitCh() <-chan struct{} {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.notify
}

// Snapshot takes an immutable copy; Persist sorts and encodes it outside the
// lock. Raft calls Snapshot between applies, so the copy is all applies wait for.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	c := f.st.Snapshot()
	f.mu.RUnlock()
	return &snapshot{img: c}, nil
}

// Restore builds new state and swaps it in. Readers keep the old state until
// the swap.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	defer relaxGC()()
	st, err := state.Decode(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.applied.Store(st.Index)
	f.mu.Unlock()
	f.wake()
	if f.observe != nil {
		f.observe([]state.Change{{Index: st.Index, Table: "*", Op: "restore"}})
	}
	return nil
}

type snapshot struct{ img *state.Snapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.img.Encode(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release lets the copy go as soon as Raft is done with it.
func (s *snapshot) Release() { s.img = nil }

// restoreGCPercent is the GC target while a restore runs. Nearly all a
// restore allocates stays live (it is the new state), so a collection during
// it frees little and marks the whole heap, the old state included: at 1 M
// cards that doubled the time of a restore. With 800 a node restarting
// collects at a few MB, a few tens and a few hundred, and a follower whose
// old state is about as big as the new one not at all until the restore is
// done; the collector then runs in the background as usual. A memory limit
// (GOMEMLIMIT) still holds during a restore.
const restoreGCPercent = 800

var gcRelax struct {
	sync.Mutex
	n    int // restores running
	prev int // the GC percent before the first of them
}

// relaxGC raises the GC percent to restoreGCPercent until the function it
// returns is called; restores may overlap (tests run several nodes in one
// process). A higher setting, or GC off, is kept as it is.
func relaxGC() (undo func()) {
	gcRelax.Lock()
	defer gcRelax.Unlock()
	if gcRelax.n == 0 {
		gcRelax.prev = debug.SetGCPercent(restoreGCPercent)
		if gcRelax.prev < 0 || gcRelax.prev > restoreGCPercent {
			debug.SetGCPercent(gcRelax.prev)
		}
	}
	gcRelax.n++
	return func() {
		gcRelax.Lock()
		defer gcRelax.Unlock()
		if gcRelax.n--; gcRelax.n == 0 {
			debug.SetGCPercent(gcRelax.prev)
		}
	}
}
