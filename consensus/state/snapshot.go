package state

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// Snapshot versions. Every snapshot starts with the line
// {"lintel_state":N}; Decode reads versions 1 and 2 and refuses others.
//
// Version 1: one JSON document, the whole State.
//
// Version 2 (written since): the tables that grow with the cards are
// records (snapcodec.go); the rest stays JSON:
//
//	{"lintel_state":2}\n
//	str "state"  str JSON of the State without the four tables below
//	section "cardholders" n, n records sorted by key
//	section "cards"       n, n records sorted by key
//	section "outbox"      n, n records sorted by key
//	section "history"     n, n records in order
//	str "end", then nothing
//
// (section = str name, uvarint count). Keys are sorted and JSON maps too, so
// the same log gives the same bytes on every node.
const (
	snapshotV1      = 1
	snapshotVersion = 2
)

type snapshotHeader struct {
	Version int `json:"lintel_state"`
}

// Snapshot is an immutable copy of a State, made to be encoded later.
// Making it is the only part of a Raft snapshot that holds the FSM: it
// copies the big tables into flat slices (no per-record allocation, no
// hashing) and leaves sorting and encoding to Encode.
type Snapshot struct {
	rest    *State // every table but the four below (nil there)
	holders table[Cardholder]
	cards   table[Card]
	outbox  table[Message]
	history []HistoryEntry // History only grows: the slice header is a copy
}

type table[T any] struct {
	keys []string
	vals []T
}

func copyTable[T any](m map[string]T) table[T] {
	t := table[T]{keys: make([]string, 0, len(m)), vals: make([]T, 0, len(m))}
	for k, v := range m {
		t.keys = append(t.keys, k)
		t.vals = append(t.vals, v)
	}
	return t
}

// sortKey orders keys by their first 16 bytes as two integers, and by the
// whole string only on a tie: the order of strings.Compare, with fewer
// pointer chases (the ids the API makes are 16 characters).
type sortKey struct {
	hi, lo uint64
	key    string
	i      int32
}

// order returns the positions of t's records sorted by key.
func (t table[T]) order() []int32 {
	ks := make([]sortKey, len(t.keys))
	for i, k := range t.keys {
		var b [16]byte
		copy(b[:], k)
		ks[i] = sortKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), k, int32(i)}
	}
	slices.SortFunc(ks, func(a, b sortKey) int {
		switch {
		case a.hi != b.hi:
			if a.hi < b.hi {
				return -1
			}
			return 1
		case a.lo != b.lo:
			if a.lo < b.lo {
				return -1
			}
			return 1
		}
		return strings.Compare(a.key, b.key)
	})
	out := make([]int32, len(ks))
	for i, k := range ks {
		out[i] = k.i
	}
	return out
}

// Snapshot copies the state for Encode. The caller holds the state still
// (the FSM's read lock) while it runs; the copy is not changed by later
// applies.
func (s *State) Snapshot() *Snapshot {
	sn := &Snapshot{history: s.History[:len(s.History):len(s.History)]}
	var wg sync.WaitGroup
	wg.Go(func() { sn.cards = copyTable(s.Cards) })
	sn.holders = copyTable(s.Cardholders)
	sn.outbox = copyTable(s.Outbox)
	sn.rest = s.frozenRest()
	wg.Wait()
	return sn
}

// Encode writes the state (the current version). Two states that applied
// the same log encode to the same bytes.
func (s *State) Encode(w io.Writer) error { return s.Snapshot().Encode(w) }

// Encode writes the snapshot (the current version).
func (sn *Snapshot) Encode(w io.Writer) error {
	if len(sn.cards.keys) >= 1<<31 || len(sn.holders.keys) >= 1<<31 || len(sn.outbox.keys) >= 1<<31 {
		return fmt.Errorf("snapshot: a table holds 2^31 records or more")
	}
	rest, err := json.Marshal(sn.rest)
	if err != nil {
		return err
	}
	// Sort the three tables at once while the JSON part is written.
	var holders, cards, outbox []int32
	var wg sync.WaitGroup
	wg.Go(func() { cards = sn.cards.order() })
	wg.Go(func() { holders, outbox = sn.holders.order(), sn.outbox.order() })

	rw := newRecWriter(w)
	rw.raw(fmt.Appendf(nil, "{\"lintel_state\":%d}\n", snapshotVersion))
	rw.label("state")
	rw.raw(binary.AppendUvarint(nil, uint64(len(rest))))
	rw.raw(rest)
	wg.Wait()

	rw.section("cardholders", len(holders))
	for _, i := range holders {
		rw.cardholder(sn.holders.keys[i], &sn.holders.vals[i])
	}
	rw.section("cards", len(cards))
	for _, i := range cards {
		rw.card(sn.cards.keys[i], &sn.cards.vals[i])
	}
	rw.section("outbox", len(outbox))
	for _, i := range outbox {
		rw.message(sn.outbox.keys[i], &sn.outbox.vals[i])
	}
	rw.section("history", len(sn.history))
	for i := range sn.history {
		rw.history(&sn.history[i])
	}
	rw.label("end")
	return rw.flush()
}

// Decode reads a state written by Encode, of this version or version 1.
func Decode(r io.Reader) (*State, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	var h snapshotHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	switch h.Version {
	case snapshotV1:
		return decodeV1(br)
	case snapshotVersion:
		return decodeV2(br)
	}
	return nil, fmt.Errorf("snapshot version %d is not known to this build (it reads versions %d and %d)", h.Version, snapshotV1, snapshotVersion)
}

// decodeV1 reads the JSON body of a version 1 snapshot.
func decodeV1(br *bufio.Reader) (*State, error) {
	s := New()
	if err := json.NewDecoder(br).Decode(s); err != nil {
		return nil, fmt.Errorf("snapshot body: %w", err)
	}
	s.fillNil()
	s.reindex()
	return s, nil
}

func decodeV2(br *bufio.Reader) (*State, error) {
	rr := &recReader{r: br}
	if err := rr.label("state"); err != nil {
		return nil, err
	}
	size, err := binary.ReadUvarint(br)
	if err != nil || size > 1<<34 {
		return nil, fmt.Errorf("snapshot state: %w", errTruncated)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, fmt.Errorf("snapshot state: %w", errTruncated)
	}
	s := New()
	if err := json.Unmarshal(body, s); err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	body = nil
	s.fillNil()
	s.reindexTables()

	// A restore is mostly map inserts. The cardholders go into their map, and
	// the card indexes are built, on a second goroutine while this one reads
	// and inserts the cards (each goroutine has its own maps).
	var holders *worker[keyed[Cardholder]]
	var cards *worker[Card]
	defer func() {
		if holders != nil {
			holders.stop()
		}
		if cards != nil {
			cards.stop()
		}
	}()

	n, err := rr.section("cardholders")
	if err != nil {
		return nil, err
	}
	s.Cardholders = make(map[string]Cardholder, sizeHint(n))
	holders = startWorker(n, func(b []keyed[Cardholder]) {
		for i := range b {
			s.Cardholders[b[i].key] = b[i].v
		}
	})
	hb := holders.get()
	err = readRecords(rr, "cardholders", n, func(d *rec) string {
		k, h := d.cardholder()
		hb = append(hb, keyed[Cardholder]{k, h})
		if len(hb) == cap(hb) {
			holders.put(hb)
			hb = holders.get()
		}
		return k
	})
	if err != nil {
		return nil, err
	}
	holders.put(hb)

	if n, err = rr.section("cards"); err != nil {
		return nil, err
	}
	s.Cards = make(map[string]Card, sizeHint(n))
	s.resetCardIndexes(sizeHint(n))
	cards = startWorker(n, func(b []Card) {
		for i := range b {
			s.indexCard(b[i])
		}
	})
	cb := cards.get()
	err = readRecords(rr, "cards", n, func(d *rec) string {
		k, c := d.card()
		s.Cards[k] = c
		cb = append(cb, c)
		if len(cb) == cap(cb) {
			cards.put(cb)
			cb = cards.get()
		}
		return k
	})
	if err != nil {
		return nil, err
	}
	cards.put(cb)

	if n, err = rr.section("outbox"); err != nil {
		return nil, err
	}
	s.Outbox = make(map[string]Message, sizeHint(n))
	err = readRecords(rr, "outbox", n, func(d *rec) string {
		k, m := d.message()
		s.Outbox[k] = m
		return k
	})
	if err != nil {
		return nil, err
	}

	if n, err = rr.section("history"); err != nil {
		return nil, err
	}
	if n > 0 {
		s.History = make([]HistoryEntry, 0, sizeHint(n))
	}
	err = readRecords(rr, "history", n, func(d *rec) string {
		s.History = append(s.History, d.history())
		return ""
	})
	if err != nil {
		return nil, err
	}
	if err := rr.label("end"); err != nil {
		return nil, err
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("snapshot: data after the end")
	}
	holders.stop()
	cards.stop()
	holders, cards = nil, nil
	return s, nil
}

// sizeHint is the size to make a table for n records. Above 2 M records the
// maps grow as they fill: a damaged count fails at the first missing record,
// having allocated for 2 M at most.
func sizeHint(n int) int { return min(n, 1<<21) }

// readRecords reads the n records of a section: put decodes one and returns
// its key, which must come after the previous one (the writer sorts; history
// has no keys and returns "").
func readRecords(rr *recReader, name string, n int, put func(*rec) string) error {
	prev := ""
	for i := range n {
		d, err := rr.next()
		if err != nil {
			return fmt.Errorf("snapshot %s record %d: %w", name, i, err)
		}
		k := put(d)
		if err := d.done(); err != nil {
			return fmt.Errorf("snapshot %s record %d: %w", name, i, err)
		}
		if i > 0 && k != "" && k <= prev {
			return fmt.Errorf("snapshot %s record %d: key %q out of order", name, i, k)
		}
		prev = k
	}
	return nil
}

type keyed[T any] struct {
	key string
	v   T
}

// worker runs handle on batches on its own goroutine; the batch buffers go
// round between get, put and handle, so a restore makes no garbage here.
type worker[T any] struct {
	free, work chan []T
	done       chan struct{}
}

const workerBatch, workerBuffers = 1024, 4

// startWorker starts a worker for n records.
func startWorker[T any](n int, handle func([]T)) *worker[T] {
	w := &worker[T]{free: make(chan []T, workerBuffers), work: make(chan []T, workerBuffers), done: make(chan struct{})}
	for range workerBuffers {
		w.free <- make([]T, 0, max(1, min(n, workerBatch)))
	}
	go func() {
		defer close(w.done)
		for b := range w.work {
			handle(b)
			clear(b) // drop references the buffer would otherwise keep
			w.free <- b[:0]
		}
	}()
	return w
}

func (w *worker[T]) get() []T  { return <-w.free }
func (w *worker[T]) put(b []T) { w.work <- b }

// stop waits for every batch put so far.
func (w *worker[T]) stop() {
	close(w.work)
	<-w.done
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
