package voucher

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// field is one "key: value" line.
type field struct {
	key, value string
	line       int
}

// formatVersion is the only version of the three formats this build reads.
const formatVersion = "1"

// format names one of the text formats.
type format struct {
	magic string // first word of the header line
	what  string // its name in errors
	// secret keeps the text out of error messages: a private key file's
	// lines hold the seed.
	secret bool
}

// show renders a piece of the text for an error message.
func (f format) show(s string) string {
	if f.secret {
		return "(not shown: the file holds a secret)"
	}
	return quote(s)
}

// readDocument checks the header line ("magic 1") of a text and returns its
// "key: value" lines.
//
// It is forgiving about layout only: vouchers travel through mail and browser
// text areas, which add CRLF line ends, indentation, blank lines or a
// byte-order mark. Meaning is checked by the caller.
func readDocument(text []byte, f format) ([]field, error) {
	magic, what := f.magic, f.what
	var fields []field
	s := strings.TrimPrefix(string(text), "\uFEFF")
	header := false
	for i, raw := range strings.Split(s, "\n") {
		n := i + 1
		line := strings.Trim(raw, " \t\r")
		if line == "" {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("line %d is not UTF-8 text", n)
		}
		if j := strings.IndexFunc(line, isControl); j >= 0 {
			r, _ := utf8.DecodeRuneInString(line[j:])
			return nil, fmt.Errorf("line %d has a control character (%U)", n, r)
		}
		if !header {
			header = true
			parts := strings.Fields(line)
			if len(parts) != 2 || parts[0] != magic {
				return nil, fmt.Errorf("line %d: not a %s: the first line must be %q, not %s", n, what, magic+" "+formatVersion, f.show(line))
			}
			if parts[1] != formatVersion {
				return nil, fmt.Errorf("line %d: %s version %s is not supported; this build reads version %s", n, what, f.show(parts[1]), formatVersion)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: %s is not a \"key: value\" line", n, f.show(line))
		}
		fields = append(fields, field{key: strings.Trim(k, " \t"), value: strings.Trim(v, " \t"), line: n})
	}
	if !header {
		return nil, fmt.Errorf("the text is empty; a %s starts with %q", what, magic+" "+formatVersion)
	}
	return fields, nil
}

// isControl reports a character no line may hold. Tabs are layout (no
// value may hold one: the value checks refuse it).
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

// quote renders a value for an error message: quoted, so the message stays
// one line, and cut short, so a 4 KiB line does not flood a log.
func quote(s string) string {
	const limit = 40
	if utf8.RuneCountInString(s) <= limit {
		return fmt.Sprintf("%q", s)
	}
	r := []rune(s)
	return fmt.Sprintf("%q…", string(r[:limit]))
}

// fieldSet collects the fields of a document, each at most once, from a
// fixed list of known keys.
type fieldSet map[string]field

func collect(fields []field, ft format, known ...string) (fieldSet, error) {
	set := fieldSet{}
	for _, f := range fields {
		if !slices.Contains(known, f.key) {
			return nil, fmt.Errorf("line %d: unknown field %s (the fields are %s)", f.line, ft.show(f.key), strings.Join(known, ", "))
		}
		if prev, dup := set[f.key]; dup {
			return nil, fmt.Errorf("line %d: field %q appears again (first on line %d)", f.line, f.key, prev.line)
		}
		set[f.key] = f
	}
	for _, k := range known {
		if _, ok := set[k]; !ok {
			return nil, fmt.Errorf("the %q line is missing", k)
		}
	}
	return set, nil
}
