package consensus

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"lintel/consensus/state"
)

// recover brings the state back to what this node had applied before it
// stopped, before Raft starts: the newest snapshot, then the log after it up
// to the durable mark. hashicorp/raft alone would restore the snapshot and
// wait for a leader to name the commit index, so a node restarting cut off
// would serve an older replica (NoSnapshotRestoreOnStart hands the restore
// to us). It attaches the mark last, so the replay does not rewrite it.
func (f *fsm) recover(logs raft.LogStore, snaps raft.SnapshotStore, mark *appliedMark, dataDir string, log hclog.Logger) error {
	observe := f.observe
	f.observe = nil // nothing watches yet; one restore event at the end
	defer func() { f.observe = observe }()

	var floor uint64
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots in %s: %w", filepath.Join(dataDir, "snapshots"), err)
	}
	if len(metas) > 0 {
		// The newest, as Raft picks it when it opens with NoSnapshotRestoreOnStart.
		meta := metas[0]
		path := filepath.Join(dataDir, "snapshots", meta.ID)
		_, rc, err := snaps.Open(meta.ID)
		if err != nil {
			return fmt.Errorf("snapshot %s cannot be opened (%v): move %s and %s aside and %s", path, oneLine(err.Error()),
				filepath.Join(dataDir, "raft"), filepath.Join(dataDir, "snapshots"), catchUp)
		}
		if err := f.Restore(rc); err != nil {
			return fmt.Errorf("snapshot %s is damaged (%v): move %s and %s aside and %s", path, oneLine(err.Error()),
				filepath.Join(dataDir, "raft"), filepath.Join(dataDir, "snapshots"), catchUp)
		}
		floor = meta.Index
	}
	// raft-wal takes a tail it cannot read for a torn last write and drops
	// it: only the mark tells that from entries this node had applied and
	// lost. (The state may be ahead of the snapshot's label: see Snapshot.)
	last, err := logs.LastIndex()
	if err != nil {
		return damagedStore(walMetaOf(dataDir), err.Error())
	}
	if m := mark.Index(); m > max(last, floor, f.applied.Load()) {
		return damagedStore(walMetaOf(dataDir), fmt.Sprintf("the log ends at entry %d, but this node had applied entries up to %d: entries were lost", max(last, floor), m))
	}
	// Raft labels a snapshot with the last entry it handed over, barriers
	// included, which the state never sees: entries between the state's
	// index and the label are barriers and no-ops, and a follower that
	// installed the snapshot may hold none of them (or stale ones). Replay
	// from past the label.
	from, to := max(f.applied.Load(), floor)+1, mark.Index()
	const batch = 256
	for from <= to {
		logsIn, err := readLogs(logs, from, min(to, from+batch-1))
		if err != nil {
			// Only a snapshot installed from the leader compacts the log
			// below the mark, and it resets the mark first.
			log.Warn("log entry below the applied mark is missing; stopping the replay there", "mark", to, "error", err)
			to = 0 // apply what was read, then stop
		}
		if len(logsIn) == 0 {
			break
		}
		f.amu.Lock()
		f.applyLocked(logsIn, false)
		f.amu.Unlock()
		if f.halt.Load() != nil {
			break
		}
		from = logsIn[len(logsIn)-1].Index + 1
	}
	if n := f.applied.Load(); n > 0 {
		log.Info("replica recovered", "applied_index", n, "mark", mark.Index())
	}
	f.mark = mark
	if observe != nil {
		observe([]state.Change{{Index: f.applied.Load(), Table: "*", Op: "restore"}})
	}
	return nil
}

// readLogs reads the entries from..to of the local log, in order, as far as
// the first one missing (an error naming it).
func readLogs(store raft.LogStore, from, to uint64) ([]*raft.Log, error) {
	out := make([]*raft.Log, 0, to-from+1)
	for i := from; i <= to; i++ {
		l := new(raft.Log)
		if err := store.GetLog(i, l); err != nil {
			return out, fmt.Errorf("entry %d: %w", i, err)
		}
		out = append(out, l)
	}
	return out, nil
}
