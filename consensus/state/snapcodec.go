package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// The record codec of snapshot version 2 (see snapshot.go and DESIGN.md).
// A record is uvarint(length) followed by its fields in a fixed order:
//
//	str      uvarint(len) bytes
//	dict     uvarint(0) str: a new value, numbered in order of appearance;
//	         uvarint(n): the n-th value of this section (low-cardinality fields)
//	int      zig-zag varint
//	bool     one byte, 0 or 1
//	time     int Unix seconds, uvarint nanoseconds<<1 | zoned, and when zoned
//	         int zone offset in seconds (what the JSON form keeps: the
//	         instant and the offset); not zoned is UTC
//	*time    byte 0 (nil) or 1 then time
//	list     uvarint(0) for nil, uvarint(n+1) then n dict values
//	map      uvarint(0) for nil, uvarint(n+1) then n str key, str value,
//	         sorted by key
//	bytes    uvarint(0) for nil, uvarint(n+1) then n bytes
//
// Nil and empty are kept apart, so a decoded record is the record that was
// encoded, field for field; TestSnapshotCodecCoversEveryField fails when a
// field is added to a record type and not here.

// recWriter writes records to w through one buffer.
type recWriter struct {
	w    io.Writer
	out  []byte // encoded records not yet written
	rec  []byte // the record being built
	dict map[string]uint64
	err  error
}

const recFlushAt = 1 << 18

func newRecWriter(w io.Writer) *recWriter {
	return &recWriter{w: w, out: make([]byte, 0, recFlushAt+4096)}
}

// label writes a name outside any record.
func (w *recWriter) label(name string) {
	w.raw(binary.AppendUvarint(nil, uint64(len(name))))
	w.raw([]byte(name))
}

// section starts a section of n records; dictionary numbers restart.
func (w *recWriter) section(name string, n int) {
	w.rec = w.rec[:0]
	w.str(name)
	w.uvarint(uint64(n))
	w.out = append(w.out, w.rec...)
	w.rec = w.rec[:0]
	clear(w.dict)
	if w.dict == nil {
		w.dict = map[string]uint64{}
	}
}

// end closes the record being built and flushes when the buffer is full.
func (w *recWriter) end() {
	w.out = binary.AppendUvarint(w.out, uint64(len(w.rec)))
	w.out = append(w.out, w.rec...)
	w.rec = w.rec[:0]
	if len(w.out) >= recFlushAt {
		w.flush()
	}
}

// raw writes bytes outside any record.
func (w *recWriter) raw(b []byte) {
	w.out = append(w.out, b...)
	if len(w.out) >= recFlushAt {
		w.flush()
	}
}

func (w *recWriter) flush() error {
	if w.err == nil && len(w.out) > 0 {
		_, w.err = w.w.Write(w.out)
	}
	w.out = w.out[:0]
	return w.err
}

func (w *recWriter) uvarint(u uint64) { w.rec = binary.AppendUvarint(w.rec, u) }
func (w *recWriter) int(i int64)      { w.rec = binary.AppendVarint(w.rec, i) }

func (w *recWriter) str(s string) {
	w.rec = binary.AppendUvarint(w.rec, uint64(len(s)))
	w.rec = append(w.rec, s...)
}

func (w *recWriter) dictStr(s string) {
	if n, ok := w.dict[s]; ok {
		w.uvarint(n)
		return
	}
	w.dict[s] = uint64(len(w.dict) + 1)
	w.uvarint(0)
	w.str(s)
}

func (w *recWriter) bool(b bool) {
	if b {
		w.rec = append(w.rec, 1)
	} else {
		w.rec = append(w.rec, 0)
	}
}

func (w *recWriter) time(t time.Time) {
	w.int(t.Unix())
	ns := uint64(t.Nanosecond()) << 1
	if t.Location() == time.UTC {
		w.uvarint(ns)
		return
	}
	_, off := t.Zone()
	w.uvarint(ns | 1)
	w.int(int64(off))
}

func (w *recWriter) ptime(t *time.Time) {
	w.bool(t != nil)
	if t != nil {
		w.time(*t)
	}
}

func (w *recWriter) list(l []string) {
	if l == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(l)) + 1)
	for _, s := range l {
		w.dictStr(s)
	}
}

func (w *recWriter) smap(m map[string]string) {
	if m == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(m)) + 1)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.str(k)
		w.str(m[k])
	}
}

func (w *recWriter) bytes(b []byte) {
	if b == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(b)) + 1)
	w.rec = append(w.rec, b...)
}

// key writes a map key and the record's own id: the id only when it differs.
func (w *recWriter) key(k, id string) {
	w.str(k)
	w.bool(id != k)
	if id != k {
		w.str(id)
	}
}

var errTruncated = errors.New("snapshot record is truncated or malformed")

// recReader reads the records written by recWriter.
type recReader struct {
	r     *bufio.Reader
	left  int    // records of the section not yet read from r
	chunk string // records read ahead, as one string
	ends  []int  // where each record of chunk ends
	k     int    // the next record of chunk
	buf   []byte
	dict  []string
	lists map[string][]string // access level lists already seen in the section
	key   []byte
	zones map[int]*time.Location
	cur   rec
}

// zone puts t in the zone of offset off as a JSON decode would: Local when
// Local has that offset at t, otherwise a fixed zone (one per offset).
func (r *recReader) zone(t time.Time, off int) time.Time {
	if _, lo := t.Zone(); lo == off {
		return t
	}
	loc, ok := r.zones[off]
	if !ok {
		loc = time.FixedZone("", off)
		if r.zones == nil {
			r.zones = map[int]*time.Location{}
		}
		r.zones[off] = loc
	}
	return t.In(loc)
}

// recChunk is how many bytes of records become one string: the strings of
// the records are slices of it, so a restore allocates a few thousand
// strings, not one or more per record.
const recChunk = 64 << 10

// label reads a name written by recWriter.label and checks it.
func (r *recReader) label(name string) error {
	n, err := binary.ReadUvarint(r.r)
	if err != nil || n > 64 {
		return fmt.Errorf("snapshot, before %s: %w", name, errTruncated)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(r.r, got); err != nil {
		return fmt.Errorf("snapshot, before %s: %w", name, errTruncated)
	}
	if string(got) != name {
		return fmt.Errorf("snapshot: %q where %q was expected", got, name)
	}
	return nil
}

// section reads a section's name and count; dictionary numbers restart.
func (r *recReader) section(name string) (int, error) {
	if err := r.label(name); err != nil {
		return 0, err
	}
	count, err := binary.ReadUvarint(r.r)
	if err != nil || count > 1<<40 {
		return 0, fmt.Errorf("snapshot section %s: %w", name, errTruncated)
	}
	r.left, r.k, r.ends, r.chunk = int(count), 0, r.ends[:0], ""
	r.dict = r.dict[:0]
	r.lists = map[string][]string{}
	return int(count), nil
}

// fill reads the next records of the section, about recChunk bytes of them.
func (r *recReader) fill() error {
	r.buf, r.ends, r.k = r.buf[:0], r.ends[:0], 0
	for r.left > 0 && len(r.buf) < recChunk {
		n, err := binary.ReadUvarint(r.r)
		if err != nil || n > 1<<30 {
			return errTruncated
		}
		at := len(r.buf)
		r.buf = slices.Grow(r.buf, int(n))[:at+int(n)]
		if _, err := io.ReadFull(r.r, r.buf[at:]); err != nil {
			return errTruncated
		}
		r.ends = append(r.ends, len(r.buf))
		r.left--
	}
	r.chunk = string(r.buf)
	return nil
}

// next returns the next record of the section, valid until the next call.
func (r *recReader) next() (*rec, error) {
	if r.k == len(r.ends) {
		if err := r.fill(); err != nil {
			return nil, err
		}
		if len(r.ends) == 0 {
			return nil, errTruncated
		}
	}
	at := 0
	if r.k > 0 {
		at = r.ends[r.k-1]
	}
	r.cur = rec{s: r.chunk[at:r.ends[r.k]], r: r}
	r.k++
	return &r.cur, nil
}

// rec decodes the fields of one record; the first error sticks.
type rec struct {
	s   string
	r   *recReader
	bad bool
}

// done reports an error unless every byte of the record was read.
func (d *rec) done() error {
	if d.bad || d.s != "" {
		return errTruncated
	}
	return nil
}

func (d *rec) uvarint() uint64 {
	var u uint64
	var s uint
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		b := d.s[i]
		if b < 0x80 {
			d.s = d.s[i+1:]
			return u | uint64(b)<<s
		}
		u |= uint64(b&0x7f) << s
		s += 7
	}
	d.bad, d.s = true, ""
	return 0
}

func (d *rec) int() int64 {
	u := d.uvarint()
	i := int64(u >> 1)
	if u&1 != 0 {
		i = ^i
	}
	return i
}

func (d *rec) take(n uint64) string {
	if n > uint64(len(d.s)) {
		d.bad, d.s = true, ""
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}

func (d *rec) str() string { return d.take(d.uvarint()) }

func (d *rec) dictStr() string {
	n := d.uvarint()
	dict := &d.r.dict
	if n == 0 {
		v := strings.Clone(d.str()) // kept for the section: do not pin this record
		*dict = append(*dict, v)
		return v
	}
	if n > uint64(len(*dict)) {
		d.bad, d.s = true, ""
		return ""
	}
	return (*dict)[n-1]
}

func (d *rec) bool() bool {
	switch d.take(1) {
	case "\x00":
		return false
	case "\x01":
		return true
	}
	d.bad, d.s = true, ""
	return false
}

func (d *rec) time() time.Time {
	sec, ns := d.int(), d.uvarint()
	if d.bad || ns>>1 >= 1e9 {
		d.bad, d.s = true, ""
		return time.Time{}
	}
	t := time.Unix(sec, int64(ns>>1))
	if ns&1 == 0 {
		return t.UTC()
	}
	off := d.int()
	if d.bad || off <= -1<<20 || off >= 1<<20 {
		d.bad, d.s = true, ""
		return time.Time{}
	}
	return d.r.zone(t, int(off))
}

func (d *rec) ptime() *time.Time {
	if !d.bool() {
		return nil
	}
	t := d.time()
	return &t
}

// list decodes a list of dictionary values. Equal lists of a section come
// back as one slice (len == cap, so an append never writes into it): records
// are values, replaced and never changed in place, so they can share it.
func (d *rec) list() []string {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	if n-1 > uint64(len(d.s)) {
		d.bad, d.s = true, ""
		return nil
	}
	var tmp [4]string
	l := tmp[:0]
	key := d.r.key[:0]
	for range n - 1 {
		v := d.dictStr()
		l = append(l, v)
		key = binary.AppendUvarint(key, uint64(len(v)))
		key = append(key, v...)
	}
	d.r.key = key
	if shared, ok := d.r.lists[string(key)]; ok {
		return shared
	}
	l = slices.Clip(slices.Clone(l))
	if len(d.r.lists) < 1<<12 && !d.bad {
		d.r.lists[string(key)] = l
	}
	return l
}

func (d *rec) smap() map[string]string {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	if n-1 > uint64(len(d.s)) {
		d.bad, d.s = true, ""
		return nil
	}
	m := make(map[string]string, n-1)
	prev := ""
	for i := range n - 1 {
		k := d.str()
		if i > 0 && k <= prev {
			d.bad, d.s = true, "" // written sorted, each key once
			return nil
		}
		m[k], prev = d.str(), k
	}
	return m
}

func (d *rec) bytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	return []byte(d.take(n - 1))
}

func (d *rec) key() (key, id string) {
	key = d.str()
	if d.bool() {
		return key, d.str()
	}
	return key, key
}

// The record types of the big tables. Each encoder writes every field and
// its decoder reads them back in the same order.

func (w *recWriter) card(key string, c *Card) {
	w.key(key, c.ID)
	w.dictStr(c.SiteID)
	w.dictStr(c.AccountID)
	w.dictStr(c.Kind)
	w.dictStr(c.Status)
	w.dictStr(c.ReaderConfig)
	w.str(c.PrivateID)
	w.str(c.CardholderID)
	w.str(c.FirstName)
	w.str(c.LastName)
	w.str(c.Email)
	w.str(c.Phone)
	w.ptime(c.ValidFrom)
	w.ptime(c.ValidUntil)
	w.int(c.MaxUses)
	w.int(c.Uses)
	w.list(c.AccessLevels)
	w.smap(c.Fields)
	w.int(c.Credits)
	w.time(c.CreatedAt)
	w.ptime(c.SentAt)
	w.ptime(c.ActivatedAt)
	w.ptime(c.RevokedAt)
	w.bool(c.Device != nil)
	if c.Device != nil {
		w.bytes(c.Device.PublicKey)
		w.time(c.Device.BoundAt)
	}
	w.str(c.LinkHash)
	w.ptime(c.LinkExpires)
	w.str(c.OldLink)
	w.dictStr(c.OldLinkWhy)
	w.str(c.MessageID)
	w.end()
}

func (d *rec) card() (string, Card) {
	var c Card
	key, id := d.key()
	c.ID = id
	c.SiteID = d.dictStr()
	c.AccountID = d.dictStr()
	c.Kind = d.dictStr()
	c.Status = d.dictStr()
	c.ReaderConfig = d.dictStr()
	c.PrivateID = d.str()
	c.CardholderID = d.str()
	c.FirstName = d.str()
	c.LastName = d.str()
	c.Email = d.str()
	c.Phone = d.str()
	c.ValidFrom = d.ptime()
	c.ValidUntil = d.ptime()
	c.MaxUses = d.int()
	c.Uses = d.int()
	c.AccessLevels = d.list()
	c.Fields = d.smap()
	c.Credits = d.int()
	c.CreatedAt = d.time()
	c.SentAt = d.ptime()
	c.ActivatedAt = d.ptime()
	c.RevokedAt = d.ptime()
	if d.bool() {
		c.Device = &Device{PublicKey: d.bytes(), BoundAt: d.time()}
	}
	c.LinkHash = d.str()
	c.LinkExpires = d.ptime()
	c.OldLink = d.str()
	c.OldLinkWhy = d.dictStr()
	c.MessageID = d.str()
	return key, c
}

func (w *recWriter) cardholder(key string, h *Cardholder) {
	w.key(key, h.ID)
	w.dictStr(h.AccountID)
	w.str(h.FirstName)
	w.str(h.LastName)
	w.str(h.Email)
	w.str(h.Phone)
	w.smap(h.Fields)
	w.bool(h.Visitor)
	w.ptime(h.ValidFrom)
	w.ptime(h.ValidUntil)
	w.time(h.CreatedAt)
	w.end()
}

func (d *rec) cardholder() (string, Cardholder) {
	var h Cardholder
	key, id := d.key()
	h.ID = id
	h.AccountID = d.dictStr()
	h.FirstName = d.str()
	h.LastName = d.str()
	h.Email = d.str()
	h.Phone = d.str()
	h.Fields = d.smap()
	h.Visitor = d.bool()
	h.ValidFrom = d.ptime()
	h.ValidUntil = d.ptime()
	h.CreatedAt = d.time()
	return key, h
}

func (w *recWriter) message(key string, m *Message) {
	w.key(key, m.ID)
	w.dictStr(m.AccountID)
	w.str(m.CardID)
	w.str(m.To)
	w.str(m.Subject)
	w.str(m.Body)
	w.dictStr(m.Status)
	w.int(int64(m.Attempts))
	w.str(m.LastError)
	w.time(m.CreatedAt)
	w.ptime(m.SentAt)
	w.end()
}

func (d *rec) message() (string, Message) {
	var m Message
	key, id := d.key()
	m.ID = id
	m.AccountID = d.dictStr()
	m.CardID = d.str()
	m.To = d.str()
	m.Subject = d.str()
	m.Body = d.str()
	m.Status = d.dictStr()
	m.Attempts = int(d.int())
	m.LastError = d.str()
	m.CreatedAt = d.time()
	m.SentAt = d.ptime()
	return key, m
}

func (w *recWriter) history(e *HistoryEntry) {
	w.uvarint(e.Index)
	w.dictStr(e.AccountID)
	w.time(e.At)
	w.dictStr(e.Area)
	w.str(e.Action)
	w.dictStr(e.By)
	w.dictStr(e.Node)
	w.end()
}

func (d *rec) history() HistoryEntry {
	var e HistoryEntry
	e.Index = d.uvarint()
	e.AccountID = d.dictStr()
	e.At = d.time()
	e.Area = d.dictStr()
	e.Action = d.str()
	e.By = d.dictStr()
	e.Node = d.dictStr()
	return e
}
