package state

import (
	"crypto/sha256"
	"encoding/hex"
)

// Digest is the SHA-256 (hex) of the state's snapshot encoding. Encode is a
// function of the log alone, so two nodes at the same index have the same
// digest, and a different one means their replicas differ. The state must
// be held still (the FSM's read lock) for the whole call; a caller sharing
// the state takes Snapshot under the lock and calls (*Snapshot).Digest
// after releasing it.
func (s *State) Digest() (string, error) { return s.Snapshot().Digest() }

// Digest hashes the snapshot's encoding as it is written, never holding the
// whole of it; the copy is immutable, so no lock is needed.
func (sn *Snapshot) Digest() (string, error) {
	h := sha256.New()
	if err := sn.Encode(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
