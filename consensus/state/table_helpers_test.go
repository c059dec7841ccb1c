package state

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
