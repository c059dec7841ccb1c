package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"iter"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/benbjohnson/immutable"
)

// Table is a persistent map from string keys to records, sorted by key: a
// Put or Delete makes a new version and leaves every earlier one as it was
// (a B+tree, copied along one path). A State is a struct of Tables, so a
// copy of the struct is an immutable version of the whole registry, taken
// in O(1): readers, snapshots and big checks use one while applies go on,
// and a command applies into a copy that replaces the state only when the
// command succeeds.
//
// The zero Table is empty. Records are stored once, by pointer, and handed
// out as copies, so a version cannot be changed through what it returns.
type Table[V any] struct {
	i index[*V]
}

type keyOrder struct{}

func (keyOrder) Compare(a, b string) int { return strings.Compare(a, b) }

// Get returns the record under k.
func (t Table[V]) Get(k string) (V, bool) {
	if p, ok := t.i.Get(k); ok {
		return *p, true
	}
	var zero V
	return zero, false
}

// At returns the record under k, or the zero record.
func (t Table[V]) At(k string) V {
	v, _ := t.Get(k)
	return v
}

// Has reports whether k is in the table.
func (t Table[V]) Has(k string) bool { return t.i.Has(k) }

// Put sets k to v in a new version of the table.
func (t *Table[V]) Put(k string, v V) { t.i.Put(k, &v) }

// Delete removes k in a new version of the table.
func (t *Table[V]) Delete(k string) { t.i.Delete(k) }

// Len is the number of records.
func (t Table[V]) Len() int { return t.i.Len() }

// IsZero lets a table added after snapshot version 1 be left out of the
// encoding while empty (json omitzero), so older snapshots re-encode alike.
func (t Table[V]) IsZero() bool { return t.i.Len() == 0 }

// All yields every record in key order.
func (t Table[V]) All() iter.Seq2[string, V] { return t.copies(t.i.From("")) }

// Prefix yields the records whose key starts with p, in key order.
func (t Table[V]) Prefix(p string) iter.Seq2[string, V] { return t.copies(t.i.Prefix(p)) }

// copies yields copies of the stored records.
func (Table[V]) copies(seq iter.Seq2[string, *V]) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for k, p := range seq {
			if !yield(k, *p) {
				return
			}
		}
	}
}

// ptrs yields the stored records themselves, for the snapshot encoder and
// the restore, which only read them.
func (t Table[V]) ptrs(yield func(string, *V) bool) {
	for k, p := range t.i.From("") {
		if !yield(k, p) {
			return
		}
	}
}

// TableOf builds a table from a map (tests and tools).
func TableOf[V any](m map[string]V) Table[V] {
	b := newTableBuilder[V]()
	for k, v := range m {
		b.Put(k, v)
	}
	return b.Table()
}

// tableBuilder fills a new table in place (a restore), much faster than
// persistent Puts; Table ends it.
type tableBuilder[V any] struct {
	b *immutable.SortedMapBuilder[string, *V]
}

func newTableBuilder[V any]() tableBuilder[V] {
	return tableBuilder[V]{immutable.NewSortedMapBuilder[string, *V](keyOrder{})}
}

func (b tableBuilder[V]) Put(k string, v V) { b.b.Set(k, &v) }

func (b tableBuilder[V]) Table() Table[V] { return Table[V]{index[*V]{b.b.Map()}} }

// MarshalJSON writes the table as a JSON object with sorted keys: the bytes
// encoding/json writes for a map.
func (t Table[V]) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	var err error
	t.ptrs(func(k string, p *V) bool {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		var vb []byte
		if vb, err = json.Marshal(p); err != nil {
			return false
		}
		buf.Write(vb)
		return true
	})
	if err != nil {
		return nil, err
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a JSON object (or null, an empty table).
func (t *Table[V]) UnmarshalJSON(b []byte) error {
	var m map[string]V
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*t = TableOf(m)
	return nil
}

// List is a persistent list: Append and DropFront make new versions and
// leave earlier ones as they were. Its items sit in a buffer that versions
// share: a version sees buf[start:end], and an Append writes in place when
// this version ends where the buffer's written part does (claimed with a
// compare-and-swap, so of two versions appending only one writes there),
// otherwise, or when the buffer is full, it copies its own items into a new
// buffer twice their number. Items a version does not see are never
// written again, so a reader of an old version needs no lock. The dedup
// queues append and drop on nearly every apply: a path-copying tree cost
// them 1.5 KB per append.
type List[V any] struct {
	b          *listBuf[V]
	start, end int
}

type listBuf[V any] struct {
	items []V          // fixed: never re-sliced, so readers see one array
	used  atomic.Int64 // items[:used] are written
}

// Len is the number of items.
func (l List[V]) Len() int { return l.end - l.start }

// Index returns item i (0 ≤ i < Len).
func (l List[V]) Index(i int) V { return l.b.items[l.start+i] }

// Append adds v at the end, in a new version.
func (l *List[V]) Append(v V) {
	if l.b != nil && l.end < len(l.b.items) && l.b.used.CompareAndSwap(int64(l.end), int64(l.end)+1) {
		l.b.items[l.end] = v
		l.end++
		return
	}
	n := l.Len()
	nb := &listBuf[V]{items: make([]V, max(2*(n+1), 16))}
	if n > 0 {
		copy(nb.items, l.b.items[l.start:l.end])
	}
	nb.items[n] = v
	nb.used.Store(int64(n + 1))
	*l = List[V]{b: nb, end: n + 1}
}

// DropFront removes the first n items, in a new version.
func (l *List[V]) DropFront(n int) {
	if n <= 0 || l.b == nil {
		return
	}
	if n >= l.Len() {
		*l = List[V]{}
		return
	}
	l.start += n
}

// All yields every item in order.
func (l List[V]) All() iter.Seq2[int, V] {
	return func(yield func(int, V) bool) {
		for i := range l.Len() {
			if !yield(i, l.Index(i)) {
				return
			}
		}
	}
}

// ListOf builds a list from a slice (tests and tools).
func ListOf[V any](items ...V) List[V] {
	if len(items) == 0 {
		return List[V]{}
	}
	b := &listBuf[V]{items: make([]V, 2*len(items))}
	copy(b.items, items)
	b.used.Store(int64(len(items)))
	return List[V]{b: b, end: len(items)}
}

// Slice copies the items into a slice.
func (l List[V]) Slice() []V {
	out := make([]V, 0, l.Len())
	for _, v := range l.All() {
		out = append(out, v)
	}
	return out
}

// MarshalJSON writes the list as a JSON array.
func (l List[V]) MarshalJSON() ([]byte, error) {
	return json.Marshal(l.Slice())
}

// UnmarshalJSON reads a JSON array (or null, an empty list).
func (l *List[V]) UnmarshalJSON(b []byte) error {
	var s []V
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	*l = ListOf(s...)
	return nil
}

// index is a Table for the derived indexes, whose values are small (an id,
// a count): stored in the tree itself, not boxed, so an index entry is not
// one more object for the allocator and the collector.
type index[V any] struct {
	m *immutable.SortedMap[string, V]
}

func (t index[V]) Get(k string) (V, bool) {
	if t.m == nil {
		var zero V
		return zero, false
	}
	return t.m.Get(k)
}

func (t index[V]) At(k string) V {
	v, _ := t.Get(k)
	return v
}

func (t index[V]) Has(k string) bool {
	_, ok := t.Get(k)
	return ok
}

func (t *index[V]) Put(k string, v V) {
	if t.m == nil {
		t.m = immutable.NewSortedMap[string, V](keyOrder{})
	}
	t.m = t.m.Set(k, v)
}

func (t *index[V]) Delete(k string) {
	if t.m != nil {
		t.m = t.m.Delete(k)
	}
}

func (t index[V]) Len() int {
	if t.m == nil {
		return 0
	}
	return t.m.Len()
}

// From yields the entries whose key is k or after it, in key order.
func (t index[V]) From(k string) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if t.m == nil {
			return
		}
		it := t.m.Iterator()
		it.Seek(k)
		for !it.Done() {
			key, v, _ := it.Next()
			if !yield(key, v) {
				return
			}
		}
	}
}

// Prefix yields the entries whose key starts with p, in key order.
func (t index[V]) Prefix(p string) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for k, v := range t.From(p) {
			if !strings.HasPrefix(k, p) || !yield(k, v) {
				return
			}
		}
	}
}

// entry is one entry of an index being built.
type entry[V any] struct {
	k string
	v V
}

// buildIndex makes an index of entries in any order (a restore): sorted
// first, since a B+tree filled in key order touches one path at a time,
// about ten times faster at 1 M entries than in random order.
func buildIndex[V any](es []entry[V]) index[V] {
	slices.SortFunc(es, func(a, b entry[V]) int { return strings.Compare(a.k, b.k) })
	b := immutable.NewSortedMapBuilder[string, V](keyOrder{})
	for _, e := range es {
		b.Set(e.k, e.v)
	}
	return index[V]{b.Map()}
}

// counts is a persistent hash map of counts (the uniqueness indexes): no
// order, so a restore builds it without sorting, and a lookup hashes once
// instead of comparing keys down a tree. It has no iteration on purpose: an
// order that depends on the process's hash seed must never reach the state.
type counts struct {
	m *immutable.Map[string, int]
}

type seededHash struct{ seed maphash.Seed }

func (h seededHash) Hash(k string) uint32 { return uint32(maphash.String(h.seed, k)) }

func (h seededHash) Equal(a, b string) bool { return a == b }

// hashSeed is random per process, so keys chosen to collide (private ids,
// emails) cannot be found in advance.
var hashSeed = seededHash{maphash.MakeSeed()}

func (t counts) At(k string) int {
	if t.m == nil {
		return 0
	}
	n, _ := t.m.Get(k)
	return n
}

// Add adds d to the count of k; a count that reaches 0 is removed.
func (t *counts) Add(k string, d int) {
	if t.m == nil {
		t.m = immutable.NewMap[string, int](hashSeed)
	}
	if n := t.At(k) + d; n > 0 {
		t.m = t.m.Set(k, n)
	} else {
		t.m = t.m.Delete(k)
	}
}

func (t counts) Len() int {
	if t.m == nil {
		return 0
	}
	return t.m.Len()
}

// countKeys builds counts of the keys, one per thing counted (a restore).
func countKeys(keys []string) counts {
	b := immutable.NewMapBuilder[string, int](hashSeed)
	for _, k := range keys {
		n, _ := b.Get(k)
		b.Set(k, n+1)
	}
	return counts{b.Map()}
}
