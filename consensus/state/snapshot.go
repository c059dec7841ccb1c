package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// snapshotVersion is written first in every snapshot; Decode refuses others.
const snapshotVersion = 1

type snapshotHeader struct {
	Version int `json:"lintel_state"`
}

// Encode writes the state. Maps are written with sorted keys, so two states
// that applied the same log encode to the same bytes.
func (s *State) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Version: snapshotVersion}); err != nil {
		return err
	}
	if err := enc.Encode(s); err != nil {
		return err
	}
	return bw.Flush()
}

// Decode reads a state written by Encode.
func Decode(r io.Reader) (*State, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	if h.Version != snapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is not known to this build", h.Version)
	}
	s := New()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("snapshot body: %w", err)
	}
	s.fillNil()
	s.reindex()
	return s, nil
}

// fillNil gives empty tables back their maps after a decode of "null".
func (s *State) fillNil() {
	n := New()
	if s.Accounts == nil {
		s.Accounts = n.Accounts
	}
	if s.Profiles == nil {
		s.Profiles = n.Profiles
	}
	if s.Operators == nil {
		s.Operators = n.Operators
	}
	if s.Sessions == nil {
		s.Sessions = n.Sessions
	}
	if s.Sites == nil {
		s.Sites = n.Sites
	}
	if s.RemovedNodes == nil {
		s.RemovedNodes = n.RemovedNodes
	}
	if s.Dedup == nil {
		s.Dedup = n.Dedup
	}
	if s.ReaderConfigs == nil {
		s.ReaderConfigs = n.ReaderConfigs
	}
	if s.Cardholders == nil {
		s.Cardholders = n.Cardholders
	}
	if s.Cards == nil {
		s.Cards = n.Cards
	}
	if s.Outbox == nil {
		s.Outbox = n.Outbox
	}
	if s.Readers == nil {
		s.Readers = n.Readers
	}
	if s.Schedules == nil {
		s.Schedules = n.Schedules
	}
	if s.AccessLevels == nil {
		s.AccessLevels = n.AccessLevels
	}
	if s.Configurators == nil {
		s.Configurators = n.Configurators
	}
	if s.Templates == nil {
		s.Templates = n.Templates
	}
	if s.Invitations == nil {
		s.Invitations = n.Invitations
	}
	if s.Tokens == nil {
		s.Tokens = n.Tokens
	}
	if s.Issuers == nil {
		s.Issuers = n.Issuers
	}
	if s.Vouchers == nil {
		s.Vouchers = n.Vouchers
	}
}
