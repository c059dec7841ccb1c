package readerconfig

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the format.
const (
	Header            = "lintel-reader-config 1"
	MaxSize           = 64 << 10 // bytes in a file
	MaxLineLen        = 1024     // bytes in a line, not counting its end
	MaxNameLen        = 100      // characters, as state.MaxNameLen
	MaxDescriptionLen = 200      // characters; 200 four-byte runes still fit a line
	MaxSiteKeyIDLen   = 64
	// MaxErrors bounds the list Parse returns: a 64 KiB file of garbage
	// would otherwise give thousands of lines of errors.
	MaxErrors = 20
)

// Range is a Blue Mobile ID identification mode's setting: off or how close
// the phone must be.
type Range string

// The range words, nearest first.
const (
	Off       Range = "off"
	Contact   Range = "contact"
	VeryShort Range = "very_short"
	Short     Range = "short"
	Medium    Range = "medium"
	Long      Range = "long"
)

var ranges = []Range{Contact, VeryShort, Short, Medium, Long}

// Config is one reader configuration. Every field is a plain value, so
// configs compare with == and encode deterministically.
type Config struct {
	Name           string `json:"name"`
	Description    string `json:"description"`
	SiteKeyID      string `json:"site_key_id"`
	ReaderSettings bool   `json:"reader_settings"`
	Tech           Tech   `json:"tech"`
	Mode           Modes  `json:"mode"`
	Remote         Remote `json:"remote"`
}

// Tech is the technologies the reader reads (the tech.* keys).
type Tech struct {
	DESFire      bool `json:"desfire"`
	PlusSL3      bool `json:"plus_sl3"`
	ClassicSL1   bool `json:"classic_sl1"`
	UltralightC  bool `json:"ultralight_c"`
	BlueMobileID bool `json:"blue_mobile_id"`
	NFCHCE       bool `json:"nfc_hce"`
	CPS3         bool `json:"cps3"`
	LF125kHz     bool `json:"125khz"`
}

// Modes is the Blue Mobile ID identification modes (the mode.* keys).
type Modes struct {
	Badge     Range `json:"badge"`
	Slide     Range `json:"slide"`
	TapTap    Range `json:"tap_tap"`
	Remote    Range `json:"remote"`
	HandsFree Range `json:"hands_free"`
}

// Remote is the remote mode's buttons (the remote.* keys).
type Remote struct {
	Button1 bool `json:"1"`
	Button2 bool `json:"2"`
}

// Default returns the configuration a file holding only "name = name" means.
func Default(name string) Config {
	return Config{
		Name:           name,
		ReaderSettings: true,
		Tech:           Tech{DESFire: true, BlueMobileID: true},
		Mode:           Modes{Badge: Contact, Slide: Off, TapTap: Off, Remote: Off, HandsFree: Off},
	}
}

// field is one key: how to read it from a Config and how to check and
// store a value. The table order is the order Format writes.
type field struct {
	key     string
	comment string // written by Format above the key
	get     func(*Config) string
	// set stores v (already trimmed) or returns what is wrong with it.
	set func(c *Config, v string) string
}

var fields = []field{
	{key: "name", comment: "The Blue Mobile ID configuration name, unique in the account.",
		get: func(c *Config) string { return c.Name },
		set: func(c *Config, v string) string {
			if v == "" {
				return "name is required: the Blue Mobile ID configuration name, e.g. name = London"
			}
			return setText(&c.Name, "name", v, MaxNameLen)
		}},
	{key: "description",
		get: func(c *Config) string { return c.Description },
		set: func(c *Config, v string) string { return setText(&c.Description, "description", v, MaxDescriptionLen) }},
	{key: "site_key_id", comment: "Empty: the site's default key.",
		get: func(c *Config) string { return c.SiteKeyID },
		set: func(c *Config, v string) string { return setSiteKeyID(c, v) }},
	onOff("reader_settings", "The preview's \"Reader\" row: reader settings besides chip settings.",
		func(c *Config) *bool { return &c.ReaderSettings }),
	onOff("tech.desfire", "Technologies the reader reads: on or off.", func(c *Config) *bool { return &c.Tech.DESFire }),
	onOff("tech.plus_sl3", "", func(c *Config) *bool { return &c.Tech.PlusSL3 }),
	onOff("tech.classic_sl1", "", func(c *Config) *bool { return &c.Tech.ClassicSL1 }),
	onOff("tech.ultralight_c", "", func(c *Config) *bool { return &c.Tech.UltralightC }),
	onOff("tech.blue_mobile_id", "", func(c *Config) *bool { return &c.Tech.BlueMobileID }),
	onOff("tech.nfc_hce", "", func(c *Config) *bool { return &c.Tech.NFCHCE }),
	onOff("tech.cps3", "", func(c *Config) *bool { return &c.Tech.CPS3 }),
	onOff("tech.125khz", "", func(c *Config) *bool { return &c.Tech.LF125kHz }),
	rangeKey("mode.badge", "Blue Mobile ID identification modes: off, contact, very_short, short, medium or long.",
		func(c *Config) *Range { return &c.Mode.Badge }),
	rangeKey("mode.slide", "", func(c *Config) *Range { return &c.Mode.Slide }),
	rangeKey("mode.tap_tap", "", func(c *Config) *Range { return &c.Mode.TapTap }),
	rangeKey("mode.remote", "", func(c *Config) *Range { return &c.Mode.Remote }),
	rangeKey("mode.hands_free", "", func(c *Config) *Range { return &c.Mode.HandsFree }),
	onOff("remote.1", "Buttons of the remote mode: on or off.", func(c *Config) *bool { return &c.Remote.Button1 }),
	onOff("remote.2", "", func(c *Config) *bool { return &c.Remote.Button2 }),
}

func lookup(key string) *field {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

func onOff(key, comment string, ptr func(*Config) *bool) field {
	return field{key: key, comment: comment,
		get: func(c *Config) string {
			if *ptr(c) {
				return "on"
			}
			return "off"
		},
		set: func(c *Config, v string) string {
			switch v {
			case "on":
				*ptr(c) = true
				return ""
			case "off":
				*ptr(c) = false
				return ""
			}
			hint := ""
			switch strings.ToLower(v) {
			case "on", "true", "yes", "1", "enabled", "enable":
				hint = "; write on"
			case "off", "false", "no", "0", "disabled", "disable":
				hint = "; write off"
			default:
				hint = trailingCommentHint(v)
			}
			return fmt.Sprintf("%s must be on or off, not %s%s", key, quote(v), hint)
		}}
}

func rangeKey(key, comment string, ptr func(*Config) *Range) field {
	return field{key: key, comment: comment,
		get: func(c *Config) string { return string(*ptr(c)) },
		set: func(c *Config, v string) string {
			if r := Range(v); r == Off || isRange(r) {
				*ptr(c) = r
				return ""
			}
			hint := trailingCommentHint(v)
			switch sq := squash(v); {
			case sq == "on" || sq == "true" || sq == "yes":
				hint = fmt.Sprintf("; say how near the phone must be, e.g. %s = short", key)
			case sq == "false" || sq == "no" || sq == "none":
				hint = "; write off"
			case strings.Contains(sq, "3m"):
				hint = "; the longest range (\"Up to ~ 3m\") is long"
			default:
				for _, r := range append([]Range{Off}, ranges...) {
					if sq == squash(string(r)) {
						hint = "; write " + string(r)
					}
				}
			}
			return fmt.Sprintf("%s must be off or a range (contact, very_short, short, medium, long), not %s%s", key, quote(v), hint)
		}}
}

func isRange(r Range) bool {
	for _, x := range ranges {
		if r == x {
			return true
		}
	}
	return false
}

// trailingCommentHint explains a value that was meant to end in a comment.
func trailingCommentHint(v string) string {
	if strings.Contains(v, "#") {
		return "; a comment must be on its own line"
	}
	return ""
}

// setText checks a name or description. Parse hands it trimmed values; the
// edge check is for Validate, since Format could not write such a value back.
func setText(dst *string, key, v string, max int) string {
	if !utf8.ValidString(v) {
		return fmt.Sprintf("%s is not valid UTF-8 text", key)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return fmt.Sprintf("%s is %d characters long; it may be at most %d", key, n, max)
	}
	for _, r := range v {
		if unsafeTextRune(r) {
			return fmt.Sprintf("%s contains the character U+%04X (a control or invisible character); remove it", key, r)
		}
	}
	if trim(v) != v {
		return fmt.Sprintf("%s starts or ends with a space; remove it", key)
	}
	*dst = v
	return ""
}

// unsafeTextRune tells the characters refused in names and descriptions:
// controls, line and paragraph separators (they break a displayed line),
// bidirectional marks and U+FEFF (they make two names look alike or reorder
// the text shown around them).
func unsafeTextRune(r rune) bool {
	switch {
	case unicode.IsControl(r), unicode.In(r, unicode.Zl, unicode.Zp):
		return true
	case r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0xFEFF:
		return true
	}
	return false
}

func setSiteKeyID(c *Config, v string) string {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Sprintf("site_key_id may only hold letters, digits, - and _, not %s%s", quote(v), trailingCommentHint(v))
		}
	}
	// Only ASCII is left, so bytes are characters.
	if len(v) > MaxSiteKeyIDLen {
		return fmt.Sprintf("site_key_id is %d characters long; it may be at most %d", len(v), MaxSiteKeyIDLen)
	}
	c.SiteKeyID = v
	return ""
}

// rule is a check across keys. keys name the settings involved; an error
// points at the last of them in the file.
type rule struct {
	keys  []string
	check func(c *Config) string
}

var rules = []rule{
	{keys: []string{"tech.blue_mobile_id", "mode.badge", "mode.slide", "mode.tap_tap", "mode.remote", "mode.hands_free"},
		check: func(c *Config) string {
			m := c.Mode
			if c.Tech.BlueMobileID && m.Badge == Off && m.Slide == Off && m.TapTap == Off && m.Remote == Off && m.HandsFree == Off {
				return "tech.blue_mobile_id is on but every mode.* is off, so no phone could be read; turn on a mode (e.g. mode.badge = contact) or set tech.blue_mobile_id = off"
			}
			return ""
		}},
	{keys: []string{"tech.desfire", "tech.plus_sl3", "tech.classic_sl1", "tech.ultralight_c", "tech.blue_mobile_id", "tech.nfc_hce", "tech.cps3", "tech.125khz"},
		check: func(c *Config) string {
			if c.Tech == (Tech{}) {
				return "every tech.* is off, so the reader could read nothing; turn on at least one (e.g. tech.blue_mobile_id = on)"
			}
			return ""
		}},
}

// Validate checks a Config built elsewhere (decoded from JSON, say) by the
// rules Parse applies. Format writes a file that Parse reads back as the same
// Config exactly when Validate returns nil. The errors have Line 0.
func (c Config) Validate() error {
	var errs ErrorList
	for _, f := range fields {
		var scratch Config
		if msg := f.set(&scratch, f.get(&c)); msg != "" {
			errs = append(errs, &Error{Key: f.key, Message: msg})
		}
	}
	if len(errs) == 0 {
		for _, r := range rules {
			if msg := r.check(&c); msg != "" {
				errs = append(errs, &Error{Key: r.keys[0], Message: msg})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// Format writes c as a canonical file: the header, then every key in a fixed
// order, with a few comments. Parse(c.Format()) returns c when c.Validate()
// is nil; for an invalid Config the output may not parse.
func (c Config) Format() []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	for _, f := range fields {
		if f.comment != "" {
			b.WriteString("# " + f.comment + "\n")
		}
		b.WriteString(f.key + " =")
		if v := f.get(&c); v != "" {
			b.WriteString(" " + v)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// trim removes the spaces and tabs around a key or value. Only these two:
// other Unicode spaces are kept (and so written back) as the author typed
// them.
func trim(s string) string { return strings.Trim(s, " \t") }

// squash folds a word for loose comparison in suggestions.
func squash(s string) string {
	s = strings.ToLower(s)
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '_', '-', ' ', '\t', '~':
			return -1
		}
		return r
	}, s)
}

// quote shows a piece of the input in a message, cut to a readable length.
func quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	n := 0
	for i := range s {
		if n == max {
			return fmt.Sprintf("%q…", s[:i])
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}
