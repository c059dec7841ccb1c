package state

import (
	"encoding/json"
	"slices"
	"testing"
)

// asMap copies the index into a map (tests compare indexes built two ways).
func (t index[V]) asMap() map[string]V {
	m := map[string]V{}
	for k, v := range t.From("") {
		m[k] = v
	}
	return m
}

// asMap copies the counts into a map: only tests may see them in an order
// the process's hash seed decides.
func (t counts) asMap() map[string]int {
	m := map[string]int{}
	if t.m != nil {
		for it := t.m.Iterator(); !it.Done(); {
			k, n, _ := it.Next()
			m[k] = n
		}
	}
	return m
}

// A List is persistent through appends and drops, across its buffer's
// growth: every version keeps its items, positions and encoding.
func TestListVersionsAcrossDrops(t *testing.T) {
	var l List[int]
	type version struct {
		l    List[int]
		want []int
	}
	var versions []version
	var model []int
	next := 0
	buffers := 0
	for step := range 1200 {
		for range step % 13 {
			l.Append(next)
			model = append(model, next)
			next++
		}
		drop := (step * 7) % 11
		if step%397 == 0 {
			drop = len(model) // now and then, everything
		}
		before := l.b
		l.DropFront(drop)
		model = model[min(drop, len(model)):]
		if l.b != before && l.Len() > 0 {
			buffers++
		}
		versions = append(versions, version{l, slices.Clone(model)})
	}
	if buffers != 0 {
		t.Fatalf("a drop moved the list to another buffer %d times", buffers)
	}
	if l.b == nil || len(l.b.items) <= 16 {
		t.Fatal("the test does not make the buffer grow")
	}
	for i, v := range versions {
		got := v.l.Slice()
		if v.l.Len() != len(v.want) || !slices.Equal(got, v.want) {
			t.Fatalf("version %d: %d items %v, want %d", i, v.l.Len(), got, len(v.want))
		}
		for j, w := range v.want {
			if v.l.Index(j) != w {
				t.Fatalf("version %d: Index(%d) = %d, want %d", i, j, v.l.Index(j), w)
			}
		}
		for j, x := range v.l.All() {
			if x != v.want[j] {
				t.Fatalf("version %d: All yields %d at %d, want %d", i, x, j, v.want[j])
			}
		}
		b, err := json.Marshal(v.l)
		if err != nil {
			t.Fatal(err)
		}
		var back List[int]
		if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back.Slice(), v.want) {
			t.Fatalf("version %d: JSON %s came back as %v (%v)", i, b, back.Slice(), err)
		}
	}
}

// Appending to an older version leaves the newer one as it was: only one
// version may write past the buffer's written part, the other copies.
func TestListAppendToOlderVersion(t *testing.T) {
	var base List[int]
	for i := range 5 {
		base.Append(i)
	}
	newer := base
	newer.Append(100)
	older := base
	older.Append(200) // base's end is no longer the buffer's: a copy
	if got := newer.Slice(); !slices.Equal(got, []int{0, 1, 2, 3, 4, 100}) {
		t.Fatalf("newer version changed: %v", got)
	}
	if got := older.Slice(); !slices.Equal(got, []int{0, 1, 2, 3, 4, 200}) {
		t.Fatalf("older version's append: %v", got)
	}
	if older.b == newer.b {
		t.Fatal("two versions wrote into one buffer")
	}
	if got := base.Slice(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("base changed: %v", got)
	}
}

// Readers of a published version read while the writer appends (run
// with -race): they see their items, and only theirs.
func TestListReadWhileAppending(t *testing.T) {
	var l List[int]
	for i := range 100 {
		l.Append(i)
	}
	ch := make(chan List[int], 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := range ch {
			for i, x := range v.All() {
				if x != v.Index(0)+i {
					t.Errorf("version read %d at %d", x, i)
					return
				}
			}
		}
	}()
	for i := 100; i < 20000; i++ {
		l.Append(i)
		if i%3 == 0 {
			l.DropFront(1)
		}
		select {
		case ch <- l:
		default:
		}
	}
	close(ch)
	<-done
}
