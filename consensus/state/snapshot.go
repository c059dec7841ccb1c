package state

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// Snapshot versions. Every snapshot starts with the line
// {"lintel_state":N}; Decode reads versions 1 to 3 and refuses others.
//
// Version 1: one JSON document, the whole State.
//
// Version 2: the tables that grow with the cards are records
// (snapcodec.go); the rest stays JSON:
//
//	{"lintel_state":2}\n
//	str "state"  str JSON of the State with the four tables below empty
//	section "cardholders" n, n records sorted by key
//	section "cards"       n, n records sorted by key
//	section "outbox"      n, n records sorted by key
//	section "history"     n, n records in commit order
//	str "end", then nothing
//
// Version 3 (written since): version 2 with the history as the state keeps
// it since its retention per account: by account, then in commit order.
//
// (section = str name, uvarint count). Keys are sorted and JSON maps too, so
// the same log gives the same bytes on every node.
const (
	snapshotV1      = 1
	snapshotV2      = 2
	snapshotVersion = 3
)

type snapshotHeader struct {
	Version int `json:"lintel_state"`
}

// Snapshot is an immutable version of a State, to be encoded later. The
// tables are persistent, so taking one is a copy of the State struct: O(1),
// whatever the number of cards, and applies never wait for it.
type Snapshot struct {
	st State
}

// Snapshot returns the state as it is now; later applies do not change it.
func (s *State) Snapshot() *Snapshot { return &Snapshot{st: *s} }

// Encode writes the state (the current version). Two states that applied
// the same log encode to the same bytes.
func (s *State) Encode(w io.Writer) error { return s.Snapshot().Encode(w) }

// Encode writes the snapshot (the current version). The tables iterate in
// key order, so nothing is sorted here.
func (sn *Snapshot) Encode(w io.Writer) error {
	s := &sn.st
	if s.Cards.Len() >= 1<<31 || s.Cardholders.Len() >= 1<<31 || s.Outbox.Len() >= 1<<31 {
		return fmt.Errorf("snapshot: a table holds 2^31 records or more")
	}
	rest := *s
	rest.Cardholders, rest.Cards, rest.Outbox, rest.History = Table[Cardholder]{}, Table[Card]{}, Table[Message]{}, HistoryTable{}
	restJSON, err := json.Marshal(&rest)
	if err != nil {
		return err
	}
	rw := newRecWriter(w)
	rw.raw(fmt.Appendf(nil, "{\"lintel_state\":%d}\n", snapshotVersion))
	rw.label("state")
	rw.raw(binary.AppendUvarint(nil, uint64(len(restJSON))))
	rw.raw(restJSON)

	rw.section("cardholders", s.Cardholders.Len())
	for k, h := range s.Cardholders.ptrs {
		rw.cardholder(k, h)
	}
	rw.section("cards", s.Cards.Len())
	for k, c := range s.Cards.ptrs {
		rw.card(k, c)
	}
	rw.section("outbox", s.Outbox.Len())
	for k, m := range s.Outbox.ptrs {
		rw.message(k, m)
	}
	rw.section("history", s.History.Len())
	for e := range s.History.All() {
		rw.history(&e)
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
	case snapshotV2, snapshotVersion:
		return decodeV2(br)
	}
	return nil, fmt.Errorf("snapshot version %d is not known to this build (it reads versions %d to %d)", h.Version, snapshotV1, snapshotVersion)
}

// decodeV1 reads the JSON body of a version 1 snapshot.
func decodeV1(br *bufio.Reader) (*State, error) {
	s := New()
	if err := json.NewDecoder(br).Decode(s); err != nil {
		return nil, fmt.Errorf("snapshot body: %w", err)
	}
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
	s.reindexTables()

	// A restore is mostly record decoding and table inserts, in key order:
	// this goroutine decodes, and a worker per section inserts the records
	// into their table (and, for cards, collects the card indexes).
	var holders *worker[entry[Cardholder]]
	var cards *worker[entry[Card]]
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
	hb := newTableBuilder[Cardholder]()
	holders = startWorker(n, func(b []entry[Cardholder]) {
		for i := range b {
			hb.Put(b[i].k, b[i].v)
		}
	})
	hbuf := holders.get()
	err = readRecords(rr, "cardholders", n, func(d *rec) string {
		k, h := d.cardholder()
		hbuf = append(hbuf, entry[Cardholder]{k, h})
		if len(hbuf) == cap(hbuf) {
			holders.put(hbuf)
			hbuf = holders.get()
		}
		return k
	})
	if err != nil {
		return nil, err
	}
	holders.put(hbuf)

	if n, err = rr.section("cards"); err != nil {
		return nil, err
	}
	idx := newCardIndexes(sizeHint(n))
	all := newTableBuilder[Card]()
	cards = startWorker(n, func(b []entry[Card]) {
		for i := range b {
			all.Put(b[i].k, b[i].v)
			idx.add(&b[i].v)
		}
	})
	cb := cards.get()
	err = readRecords(rr, "cards", n, func(d *rec) string {
		k, c := d.card()
		cb = append(cb, entry[Card]{k, c})
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
	outbox := newTableBuilder[Message]()
	err = readRecords(rr, "outbox", n, func(d *rec) string {
		k, m := d.message()
		outbox.Put(k, m)
		return k
	})
	if err != nil {
		return nil, err
	}
	s.Outbox = outbox.Table()

	if n, err = rr.section("history"); err != nil {
		return nil, err
	}
	lines := make([]HistoryEntry, 0, sizeHint(n))
	err = readRecords(rr, "history", n, func(d *rec) string {
		lines = append(lines, d.history())
		return ""
	})
	if err != nil {
		return nil, err
	}
	// Version 2 wrote the lines in commit order, version 3 by account.
	s.History = historyOf(lines)
	if err := rr.label("end"); err != nil {
		return nil, err
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("snapshot: data after the end")
	}
	holders.stop()
	cards.stop()
	holders, cards = nil, nil
	s.Cardholders, s.Cards = hb.Table(), all.Table()
	idx.into(s)
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
