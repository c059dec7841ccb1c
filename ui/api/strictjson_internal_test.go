package api

import (
	"strings"
	"testing"
	"time"
)

func TestCheckJSON(t *testing.T) {
	ok := []string{
		`{}`, `[]`, `"x"`, `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`,
		`{"a":{"b":{"c":1}},"b":{"c":2}}`, `{"a":[1,[2,{"a":1}]],"b":[]}`, `{"a":"ü","b":"\u00ff"}`,
		`{"a":1`, // malformed: left to the decoder, which names the place
	}
	for _, b := range ok {
		if err := checkJSON([]byte(b)); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	bad := []string{
		`{"a":1,"a":2}`, `{"x":{"a":1,"b":[],"a":2}}`, `[{"a":1,"a":1}]`, `{"a":{},"b":1,"a":[]}`,
		"{\"a\":\"\xc3\"}", "{\"\xff\":1}",
		`{"name":"a","Name":"b"}`, `{"x":[{"ID":1,"id":2}]}`, `{"status":"a","ſtatus":"b"}`, `{"kind":"a","\u212aind":"b"}`,
		strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	}
	for _, b := range bad {
		if err := checkJSON([]byte(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

// A body of a million brackets is refused at once and cheaply, where the
// walk used to take a frame and a map per level.
func TestCheckJSONDeepBodyIsCheap(t *testing.T) {
	body := []byte(strings.Repeat("[", 1<<20))
	start := time.Now()
	allocs := testing.AllocsPerRun(3, func() {
		if checkJSON(body) == nil {
			t.Fatal("a million brackets accepted")
		}
	})
	if allocs > 1000 {
		t.Fatalf("%.0f allocations to refuse a deep body", allocs)
	}
	t.Logf("refused a 1 MiB body of brackets in %s (3 runs), %.0f allocations each", time.Since(start), allocs)
}

func TestLimitKeyGroupsIPv6By64(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.7": "192.0.2.7", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::9": "2001:db8:1:2::/64", "::ffff:192.0.2.7": "::ffff:192.0.2.7",
	} {
		if got := limitKey(ip); got != want {
			t.Errorf("%s: %s, want %s", ip, got, want)
		}
	}
}
