package api

import "testing"

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
	}
	for _, b := range bad {
		if err := checkJSON([]byte(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}
