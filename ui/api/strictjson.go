package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// checkJSON refuses what encoding/json would let through and a person did
// not mean: bytes that are not UTF-8 (encoding/json turns them into U+FFFD,
// so the stored text differs from what was sent) and an object that names
// a key twice (encoding/json keeps the last, so two readers of one body can
// see two different requests). It walks the tokens of the body once; the
// decode into the request struct follows.
func checkJSON(body []byte) error {
	if !utf8.Valid(body) {
		return errors.New("the request body is not valid UTF-8 text")
	}
	type frame struct {
		object, wantKey bool
		keys            map[string]struct{}
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // malformed: the decode that follows says where
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object {
			if top.wantKey {
				k := tok.(string) // the decoder only yields a string where a key goes
				if _, dup := top.keys[k]; dup {
					return fmt.Errorf("the key %q appears twice in one object; send it once", k)
				}
				top.keys[k] = struct{}{}
				top.wantKey = false
				continue
			}
			top.wantKey = true // this value ends the pair
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{object: d == '{', wantKey: d == '{', keys: map[string]struct{}{}})
		}
	}
}
