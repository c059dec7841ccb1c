package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of a request body: no request nests
// deeper than a few levels, and each level costs the walk below a frame.
const maxJSONDepth = 32

// checkJSON refuses what encoding/json would let through and a person did
// not mean: bytes that are not UTF-8 (encoding/json turns them into U+FFFD,
// so the stored text differs from what was sent), an object that names a
// key twice, in any case (encoding/json matches names regardless of case
// and keeps the last, so two readers of one body can see two different
// requests), and nesting deeper than maxJSONDepth. It walks the tokens of
// the body once; the decode into the request struct follows.
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
				folded := foldName(k)
				if _, dup := top.keys[folded]; dup {
					return fmt.Errorf("the key %q appears twice in one object (names are matched regardless of case); send it once", k)
				}
				if top.keys == nil {
					top.keys = map[string]struct{}{}
				}
				top.keys[folded] = struct{}{}
				top.wantKey = false
				continue
			}
			top.wantKey = true // this value ends the pair
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) == maxJSONDepth {
				return fmt.Errorf("the request body nests deeper than %d levels; no request needs that", maxJSONDepth)
			}
			stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
		}
	}
}

// foldName folds a key as encoding/json does when it matches a name to a
// field: ASCII letters upper-cased, any other rune the smallest of its
// case-folding set (so "ſtatus" is "STATUS", as "status" is).
func foldName(k string) string {
	var b strings.Builder
	for _, r := range k {
		switch {
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		case r >= utf8.RuneSelf:
			for {
				r2 := unicode.SimpleFold(r)
				if r2 <= r {
					r = r2
					break
				}
				r = r2
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}
