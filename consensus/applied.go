package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// appliedMark is the durable record of how far this node's state has applied
// the log. hashicorp/raft keeps the commit index in memory only: after a
// restart it restores the last snapshot and applies later entries only when a
// leader tells it the commit index again, so a node restarting cut off from
// the others would serve an older replica than it served before it stopped
// (a revoked card granted again). The FSM writes the mark, with fdatasync,
// before it applies a batch: every entry up to the mark is committed (Raft
// hands the FSM committed entries only) and stored in the log, so a restart
// replays the log up to the mark before it serves anything.
//
// The file has two 16-byte slots written in turn, each {index, crc}; a write
// torn by a power cut leaves the other slot whole, and the larger valid index
// wins.
type appliedMark struct {
	f    *os.File
	slot int64 // the slot the next write goes to
	last uint64
}

const markSlot = 16

func openAppliedMark(path string) (*appliedMark, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A new file must survive a crash too: sync its directory entry.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	m := &appliedMark{f: f}
	buf := make([]byte, 2*markSlot)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for i := 0; i+markSlot <= n; i += markSlot {
		s := buf[i : i+markSlot]
		if crc32.ChecksumIEEE(s[:8]) != binary.BigEndian.Uint32(s[8:12]) {
			continue
		}
		if idx := binary.BigEndian.Uint64(s[:8]); idx >= m.last {
			m.last, m.slot = idx, int64(1-i/markSlot)
		}
	}
	return m, nil
}

// Index is the last index recorded.
func (m *appliedMark) Index() uint64 { return m.last }

// Set records index durably; an index not above the last one is not written.
func (m *appliedMark) Set(index uint64) error {
	if index <= m.last {
		return nil
	}
	return m.write(index)
}

// Reset records index even when it is lower: the state was replaced by a
// snapshot at that index.
func (m *appliedMark) Reset(index uint64) error {
	if index == m.last {
		return nil
	}
	// Both slots: the larger valid index wins when the file is read.
	if err := m.write(index); err != nil {
		return err
	}
	return m.write(index)
}

func (m *appliedMark) write(index uint64) error {
	var s [markSlot]byte
	binary.BigEndian.PutUint64(s[:8], index)
	binary.BigEndian.PutUint32(s[8:12], crc32.ChecksumIEEE(s[:8]))
	if _, err := m.f.WriteAt(s[:], m.slot*markSlot); err != nil {
		return fmt.Errorf("write %s: %w", m.f.Name(), err)
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", m.f.Name(), err)
	}
	m.slot, m.last = 1-m.slot, index
	return nil
}

func (m *appliedMark) Close() error { return m.f.Close() }
