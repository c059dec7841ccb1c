package readerconfig

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is one problem in a file. Line counts from 1 (0: not from a file,
// see Validate); Key is the setting concerned, empty when the line has none.
type Error struct {
	Line    int    `json:"line"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.Message
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Message)
}

// ErrorList is every problem Parse found, in line order. It is never empty.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find the first *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

var bom = []byte("\xEF\xBB\xBF")

// parser collects the errors of one Parse.
type parser struct {
	errs    ErrorList
	stopped bool // MaxErrors reached
}

func (p *parser) add(line int, key, format string, args ...any) {
	if p.stopped {
		return
	}
	if len(p.errs) == MaxErrors {
		p.errs = append(p.errs, &Error{Line: line, Message: "too many errors; fix the ones above and try again"})
		p.stopped = true
		return
	}
	p.errs = append(p.errs, &Error{Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

// Parse reads a reader configuration file. On any problem it returns the
// zero Config and an ErrorList; nothing is half applied.
func Parse(b []byte) (Config, error) {
	if len(b) > MaxSize {
		// Point at the line where the limit falls, so the number is in
		// the file like every other error's.
		line := bytes.Count(b[:MaxSize], []byte("\n")) + 1
		return Config{}, ErrorList{{Line: line, Message: fmt.Sprintf(
			"the file is %d bytes; a reader configuration may be at most %d bytes (64 KiB)", len(b), MaxSize)}}
	}
	// Editors on Windows add a byte order mark; it says nothing here.
	b = bytes.TrimPrefix(b, bom)
	lines := bytes.Split(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // the end of the last line, or an empty file
	}
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\r"))
	}

	var p parser
	if !p.header(lines) {
		return Config{}, p.errs
	}
	c := Default("")
	seen := map[string]int{} // key → line, for duplicates and the rules
	for i := 1; i < len(lines) && !p.stopped; i++ {
		p.line(&c, seen, i+1, lines[i])
	}
	if p.stopped {
		return Config{}, p.errs
	}
	if _, ok := seen["name"]; !ok {
		p.add(len(lines), "name", "name is missing; add a line name = ... with the Blue Mobile ID configuration name")
	}
	// The rules judge the whole file; after another error they would
	// only echo it.
	if len(p.errs) == 0 {
		for _, r := range rules {
			if msg := r.check(&c); msg != "" {
				line, key := len(lines), r.keys[0]
				if l, k := lastSeen(seen, r.keys); l > 0 {
					line, key = l, k
				}
				p.add(line, key, "%s", msg)
			}
		}
	}
	if len(p.errs) > 0 {
		return Config{}, p.errs
	}
	return c, nil
}

// header checks the first line. A file that fails it is probably not a
// reader configuration at all (a PSE file, another version), so its other
// lines are not judged.
func (p *parser) header(lines [][]byte) bool {
	if len(lines) == 0 {
		p.add(1, "", "the file is empty; it must start with the line %q, then name = ...", Header)
		return false
	}
	h := lines[0]
	if !utf8.Valid(h) || bytes.IndexByte(h, 0) >= 0 {
		p.add(1, "", "this is not a Lintel reader configuration (it is binary, not UTF-8 text); a SECard PSE file cannot be imported, write its settings in a file starting with %q", Header)
		return false
	}
	s := strings.TrimRight(string(h), " \t")
	if s == Header {
		return true
	}
	if trim(s) == Header {
		p.add(1, "", "the first line must be exactly %q, with nothing before it", Header)
		return false
	}
	if f := strings.Fields(s); len(f) == 2 && f[0] == "lintel-reader-config" && strings.HasPrefix(s, f[0]) {
		p.add(1, "", "version %s of the reader configuration format is not supported; this Lintel reads version 1 (first line %q)", quote(f[1]), Header)
		return false
	}
	p.add(1, "", "the file must start with the line %q, not %s; add it as the first line", Header, quote(s))
	return false
}

// line reads one line after the header.
func (p *parser) line(c *Config, seen map[string]int, n int, raw []byte) {
	if msg := lineProblem(raw); msg != "" {
		p.add(n, "", "%s", msg)
		// The key is still taken as set, so a bad byte in the name
		// line does not also report the name as missing.
		if i := bytes.IndexByte(raw, '='); i >= 0 {
			if k := trim(string(raw[:i])); lookup(k) != nil {
				if _, dup := seen[k]; !dup {
					seen[k] = n
				}
			}
		}
		return
	}
	t := trim(string(raw))
	if t == "" || t[0] == '#' {
		return
	}
	eq := strings.IndexByte(t, '=')
	if eq < 0 {
		p.add(n, "", "%s", noEquals(t))
		return
	}
	key, val := trim(t[:eq]), trim(t[eq+1:])
	if key == "" {
		p.add(n, "", "there is no key before =; a setting is written key = value")
		return
	}
	f := lookup(key)
	if f == nil {
		p.add(n, key, "%s", unknownKey(key))
		return
	}
	if prev, dup := seen[key]; dup {
		p.add(n, key, "%s is already set on line %d; each key may appear once", key, prev)
		return
	}
	seen[key] = n
	if msg := f.set(c, val); msg != "" {
		p.add(n, key, "%s", msg)
	}
}

// lineProblem checks what any line must be: short, UTF-8, no controls.
func lineProblem(raw []byte) string {
	if len(raw) > MaxLineLen {
		return fmt.Sprintf("the line is %d bytes long; a line may be at most %d bytes", len(raw), MaxLineLen)
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return "the line holds a NUL byte; a reader configuration is UTF-8 text, not a binary file"
	}
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("the line is not valid UTF-8 text (byte 0x%02X at byte %d); save the file as UTF-8", raw[i], i+1)
		case unicode.IsControl(r) && r != '\t':
			return fmt.Sprintf("the line holds the control character U+%04X at byte %d; remove it (tab is the only one allowed)", r, i+1)
		}
		i += size
	}
	return ""
}

// noEquals explains a line that is neither blank, a comment nor key = value.
func noEquals(t string) string {
	if strings.HasPrefix(t, "//") || strings.HasPrefix(t, ";") {
		return fmt.Sprintf("expected key = value, found %s; comments start with #", quote(t))
	}
	if i := strings.IndexAny(t, ": \t"); i > 0 {
		if k := t[:i]; lookup(k) != nil {
			return fmt.Sprintf("expected key = value, found %s; write %s = %s", quote(t), k, trim(strings.TrimPrefix(t[i:], ":")))
		}
	}
	if lookup(t) != nil {
		return fmt.Sprintf("%s has no value; write %s = value", t, t)
	}
	return fmt.Sprintf("expected key = value, found %s", quote(t))
}

func unknownKey(key string) string {
	if s := suggest(key); s != "" {
		return fmt.Sprintf("unknown key %s; did you mean %s?", quote(key), s)
	}
	return fmt.Sprintf("unknown key %s; the keys are name, description, site_key_id, reader_settings, tech.*, mode.*, remote.1 and remote.2", quote(key))
}

// suggest finds the key a misspelt one was probably meant to be: the same
// letters in another case or punctuation, a key without its "tech." or
// "mode." prefix, or a typo or two.
func suggest(key string) string {
	if len(key) > 64 {
		return ""
	}
	sq := squash(key)
	for _, f := range fields {
		if squash(f.key) == sq {
			return f.key
		}
	}
	for _, f := range fields {
		if _, after, ok := strings.Cut(f.key, "."); ok && squash(after) == sq {
			return f.key
		}
	}
	best, bestD := "", 3
	lower := strings.ToLower(key)
	for _, f := range fields {
		if d := distance(lower, f.key); d < bestD {
			best, bestD = f.key, d
		}
	}
	if best != "" {
		return best
	}
	// "tech.mifare_desfire", "blue_mobile_id_mode": a key's last word
	// inside; the longest such word wins.
	word := 3
	for _, f := range fields {
		if _, after, ok := strings.Cut(f.key, "."); ok && len(after) > word && strings.Contains(sq, squash(after)) {
			best, word = f.key, len(after)
		}
	}
	return best
}

// distance is the Levenshtein distance between two short strings, by bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lastSeen returns the last line, and its key, among keys set in the file.
func lastSeen(seen map[string]int, keys []string) (int, string) {
	line, key := 0, ""
	for _, k := range keys {
		if l, ok := seen[k]; ok && l > line {
			line, key = l, k
		}
	}
	return line, key
}
