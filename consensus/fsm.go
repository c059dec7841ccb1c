package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// fsm adapts state.State to Raft: decode → dispatch → state, a batch at a time.
//
// Three paths apply entries, one at a time (amu): Raft's FSM goroutine, the
// replay of the log up to the durable mark when the node opens, and a
// follower catching up from its own log on a commit it learned of from the
// leader (CatchUp). Every path applies an entry once: an entry at or below the
// applied index is skipped, so the paths may hand over the same entries.
type fsm struct {
	amu     sync.Mutex                  // one apply path at a time
	st      atomic.Pointer[state.State] // the applied state: an immutable version
	applied atomic.Uint64               // index of the last log the state reflects
	mark    *appliedMark                // nil in tests that need no durability
	halt    atomic.Pointer[Halt]
	closed  bool    // amu: after Close nothing is applied (the mark is closed)
	answers answers // amu: the values of recent answers to plain request ids

	wmu    sync.Mutex
	notify chan struct{} // closed and replaced whenever applied moves

	observe func([]state.Change) // called after each batch, outside the lock
	// archive keeps the history lines a batch takes out of the state; it
	// runs before the batch is published, so no reader sees the lines gone
	// from the state before they are in the archive.
	archive func([]state.HistoryEntry) error
	onApply func(applied uint64) // called after each batch, outside the lock
	log     hclog.Logger
}

// Halt says why this node stopped applying the log: a command it cannot
// decode (only a newer build writes one) or a mark it could not write. A
// halted node keeps its state as it was at Index-1 and serves it as stale;
// nothing is guessed and nothing is skipped. A restart replays from the mark
// and stops at the same place until the cause is fixed.
type Halt struct {
	Index  uint64
	Type   string // the command type byte, or "mark"
	Reason string
}

func (h *Halt) Error() string {
	return fmt.Sprintf("apply stopped at index %d (%s): %s", h.Index, h.Type, h.Reason)
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(observe func([]state.Change)) *fsm {
	f := &fsm{notify: make(chan struct{}), observe: observe}
	f.st.Store(state.New())
	return f
}

func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies the logs Raft hands over.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.amu.Lock()
	defer f.amu.Unlock()
	return f.applyLocked(logs, true)
}

// applyLocked applies logs under amu. durable: write the mark first (the
// replay at open applies what the mark already covers).
func (f *fsm) applyLocked(logs []*raft.Log, durable bool) []any {
	out := make([]any, len(logs))
	if h := f.halt.Load(); h != nil {
		for i := range out {
			out[i] = h
		}
		return out
	}
	if f.closed {
		return out // Raft is shut down; the entries are in its log for the next start
	}
	applied := f.applied.Load()
	first := 0
	for first < len(logs) && logs[first].Index <= applied {
		first++ // applied already by another path
	}
	todo := logs[first:]
	if len(todo) == 0 {
		return out
	}
	if durable && f.mark != nil {
		if err := f.mark.Set(todo[len(todo)-1].Index); err != nil {
			h := &Halt{Index: todo[0].Index, Type: "mark", Reason: err.Error()}
			f.halted(h)
			for i := first; i < len(out); i++ {
				out[i] = h
			}
			return out
		}
	}
	var all []state.Change
	last := applied
	// The batch applies to a new version of the state (a copy of the struct;
	// the tables are persistent), published when the batch is done. Readers
	// keep the version they took, and never hold an apply up.
	st := f.st.Load().Clone()
apply:
	for i, l := range todo {
		if l.Type != raft.LogCommand {
			st.Index, last = l.Index, l.Index
			continue
		}
		c, err := command.Decode(l.Data)
		switch {
		case errors.Is(err, command.ErrSkippable):
			st.Index, last = l.Index, l.Index
			continue
		case err != nil:
			// Only a newer build writes what this one cannot read: stop here,
			// loudly, rather than guess or skip (the others apply it).
			typ := "empty"
			if len(l.Data) > 0 {
				typ = fmt.Sprintf("type %d", l.Data[0])
			}
			h := &Halt{Index: l.Index, Type: typ, Reason: err.Error()}
			f.halted(h)
			for j := first + i; j < len(out); j++ {
				out[j] = h
			}
			break apply
		}
		// AppendedAt is the leader's stamp, stored with the entry: the same on every node.
		res, ch := st.ApplyAt(l.Index, l.AppendedAt, c)
		if c.RequestID != "" && !c.Idempotent {
			res = f.answers.keep(c.RequestID, res)
		}
		out[first+i] = res
		all = append(all, ch...)
		last = l.Index
	}
	if err := f.archived(all); err != nil {
		// The lines would be lost on this node: keep the state as it was
		// and stop, as when the mark cannot be written.
		h := &Halt{Index: todo[0].Index, Type: "archive", Reason: err.Error()}
		f.halted(h)
		for i := first; i < len(out); i++ {
			out[i] = h
		}
		return out
	}
	f.st.Store(st)
	// Watchers hear of the batch before anyone waiting for its index is
	// woken: a page read right after a write then sees the console's read
	// model told of it too.
	if f.observe != nil && len(all) > 0 {
		f.observe(all)
	}
	f.applied.Store(last)
	f.wake()
	if f.onApply != nil {
		f.onApply(last)
	}
	return out
}

// archived hands the batch's trimmed history lines to the archive.
func (f *fsm) archived(changes []state.Change) error {
	if f.archive == nil {
		return nil
	}
	var lines []state.HistoryEntry
	for _, c := range changes {
		if c.Op == "archive" && c.Entry != nil {
			lines = append(lines, *c.Entry)
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return f.archive(lines)
}

func (f *fsm) halted(h *Halt) {
	f.halt.Store(h)
	if f.log != nil {
		f.log.Error("this node stopped applying the log; it serves its replica as stale until restarted with a build that can apply it",
			"index", h.Index, "type", h.Type, "reason", h.Reason)
	}
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

// Snapshot takes the current version of the state (O(1)); Persist encodes it
// while applies go on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.amu.Lock()
	defer f.amu.Unlock()
	if h := f.halt.Load(); h != nil {
		return nil, h
	}
	// The state may be ahead of the index Raft labels the snapshot with
	// (entries replayed at open or caught up from the log): a restore then
	// sets the applied index from the state itself, and the entries Raft
	// hands over again are skipped.
	return &snapshot{img: f.st.Load().Snapshot()}, nil
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
	f.amu.Lock()
	defer f.amu.Unlock()
	if f.mark != nil {
		// The snapshot is on disk before Raft restores it; the mark must not
		// point past it into a log Raft may have compacted.
		if err := f.mark.Reset(st.Index); err != nil {
			return err
		}
	}
	f.st.Store(st)
	if f.observe != nil { // before the waiters wake, as after a batch
		f.observe([]state.Change{{Index: st.Index, Table: "*", Op: "restore"}})
	}
	f.applied.Store(st.Index)
	f.halt.Store(nil)
	f.wake()
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

// answers keeps, in memory on each node, the values of the answers to the
// latest plain request ids, which the replicated dedup table keeps only as
// a digest: a retry of a write in flight (the same request id, within
// seconds) gets its first answer back from the node that applies it. A node
// that restarted or restored a snapshot since has lost them; the retry then
// answers that the write applied (Result.Replayed), without its value.
type answers struct {
	vals  map[string]json.RawMessage
	order []string
	bytes int
}

// Bounds of the answers kept: those of the dedup table's retry ids, and no
// more than answersMaxBytes of values.
const answersMaxBytes = 32 << 20

// keep records a first answer, or fills a replayed one from what it kept.
func (a *answers) keep(id string, res state.Result) state.Result {
	if res.Replayed != 0 {
		if v, ok := a.vals[id]; ok && res.Value == nil && state.SumOf(v) == res.Sum {
			res.Value = v
		}
		return res
	}
	if res.Value == nil {
		return res
	}
	if a.vals == nil {
		a.vals = map[string]json.RawMessage{}
	}
	if old, ok := a.vals[id]; ok {
		a.bytes -= len(old) // the id came back after its dedup entry expired
	} else {
		a.order = append(a.order, id)
	}
	a.vals[id] = res.Value
	a.bytes += len(res.Value)
	drop := 0
	for len(a.order)-drop > state.DedupRetryMax || a.bytes > answersMaxBytes {
		a.bytes -= len(a.vals[a.order[drop]])
		delete(a.vals, a.order[drop])
		drop++
	}
	if drop > 0 {
		a.order = a.order[drop:]
		if cap(a.order) > 2*len(a.order)+64 {
			a.order = append(make([]string, 0, 2*len(a.order)+64), a.order...)
		}
	}
	return res
}
