package reader

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"lintel/consensus/command"
)

// Event kinds: a phone presented a card; an operator unlocked the door; a
// phone was enrolled at an armed reader (granted: the card was made).
const (
	KindPresentation = "presentation"
	KindRemoteUnlock = "remote_unlock"
	KindEnrollment   = "enrollment"
)

// Event is one access decision (SPEC 4.6). ID is this node's sequence
// number: events are kept per node and not replicated (yet).
type Event struct {
	ID         uint64    `json:"id"`
	Time       time.Time `json:"time"`
	NodeID     string    `json:"node_id"`
	Kind       string    `json:"kind"`
	ReaderID   string    `json:"reader_id"`
	CardID     string    `json:"card_id"`
	Cardholder string    `json:"cardholder"`
	Result     string    `json:"result"` // granted or denied
	Reason     string    `json:"reason"`
	By         string    `json:"by,omitempty"` // the operator of a remote unlock
	Granted    bool      `json:"-"`
}

// EventFilter selects events: all set fields must match.
type EventFilter struct {
	SinceID  uint64    // events with a larger id
	Since    time.Time // events at or after this time
	ReaderID string
	CardID   string
	Result   string
	Kind     string
	Limit    int // default and cap MaxEventPage
}

// MaxEventPage bounds one List answer.
const MaxEventPage = 1000

var (
	eventsBucket = []byte("events")
	queueBucket  = []byte("queue")
)

// EventLog is the node's local event log: DATA/events/events.db in bbolt,
// keyed by a big-endian sequence so a cursor walks them in order. The same
// file holds the offline queue: commands made while the node had no quorum,
// committed in order when it is back.
type EventLog struct {
	db *bolt.DB
}

// OpenEventLog opens (creating) dataDir/events/events.db.
func OpenEventLog(dataDir string) (*EventLog, error) {
	dir := filepath.Join(dataDir, "events")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	// The timeout keeps a second process on the same data dir from hanging.
	db, err := bolt.Open(filepath.Join(dir, "events.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(eventsBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(queueBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("event log: %w", err)
	}
	return &EventLog{db: db}, nil
}

// Append stores e with the next sequence id and returns it.
func (l *EventLog) Append(e Event) (Event, error) {
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(eventsBucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.ID = seq
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
	})
	return e, err
}

// List returns the matching events, oldest first.
func (l *EventLog) List(f EventFilter) ([]Event, error) {
	if f.Limit <= 0 || f.Limit > MaxEventPage {
		f.Limit = MaxEventPage
	}
	out := []Event{}
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(eventsBucket).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, f.SinceID+1)); k != nil && len(out) < f.Limit; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if (f.ReaderID != "" && e.ReaderID != f.ReaderID) || (f.CardID != "" && e.CardID != f.CardID) ||
				(f.Result != "" && e.Result != f.Result) || (!f.Since.IsZero() && e.Time.Before(f.Since)) ||
				(f.Kind != "" && e.Kind != f.Kind) {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Queued is a command waiting for the quorum.
type Queued struct {
	Seq     uint64
	Command command.Command
}

// Enqueue stores cmd at the end of the offline queue (fsynced, like every
// bbolt commit, before it returns).
func (l *EventLog) Enqueue(cmd command.Command) error {
	b, err := command.Encode(cmd)
	if err != nil {
		return err
	}
	return l.db.Update(func(tx *bolt.Tx) error {
		q := tx.Bucket(queueBucket)
		seq, err := q.NextSequence()
		if err != nil {
			return err
		}
		return q.Put(binary.BigEndian.AppendUint64(nil, seq), b)
	})
}

// Queued lists the offline queue, oldest first.
func (l *EventLog) Queued() ([]Queued, error) {
	var out []Queued
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(queueBucket).ForEach(func(k, v []byte) error {
			cmd, err := command.Decode(v)
			if err != nil {
				return fmt.Errorf("offline queue entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, Queued{Seq: binary.BigEndian.Uint64(k), Command: cmd})
			return nil
		})
	})
	return out, err
}

// Dequeue removes a settled command.
func (l *EventLog) Dequeue(seq uint64) error {
	return l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(queueBucket).Delete(binary.BigEndian.AppendUint64(nil, seq))
	})
}

// Close closes the database.
func (l *EventLog) Close() error {
	return l.db.Close()
}
