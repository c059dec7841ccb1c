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

// A List is persistent through appends and drops, the lazy drop included:
// every version keeps its items, positions and encoding.
func TestListVersionsAcrossDrops(t *testing.T) {
	var l List[int]
	type version struct {
		l    List[int]
		want []int
	}
	var versions []version
	var model []int
	next := 0
	cuts := 0
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
		before := l.start
		l.DropFront(drop)
		model = model[min(drop, len(model)):]
		if l.start < before && l.Len() > 0 {
			cuts++
		}
		versions = append(versions, version{l, slices.Clone(model)})
	}
	if cuts < 2 {
		t.Fatalf("%d cuts of dropped items: the test does not cross listDropAt", cuts)
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
