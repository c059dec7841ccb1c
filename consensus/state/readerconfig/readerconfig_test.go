package readerconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

const hdr = Header + "\n"

func mustParse(t *testing.T, s string) Config {
	t.Helper()
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return c
}

func TestMinimalFile(t *testing.T) {
	for _, s := range []string{
		"lintel-reader-config 1\nname = London\n",
		"lintel-reader-config 1\nname = London",           // no final newline
		"lintel-reader-config 1\r\nname = London\r\n",     // CRLF
		"\xEF\xBB\xBFlintel-reader-config 1\nname=London", // BOM, no spaces
		"lintel-reader-config 1  \n\n# the seed's site\n\tname\t=   London  \n\n",
	} {
		if got, want := mustParse(t, s), Default("London"); got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", s, got, want)
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default("London")
	// The seed's "London" preview, with badge mode only.
	want := Config{
		Name:           "London",
		ReaderSettings: true,
		Tech:           Tech{DESFire: true, BlueMobileID: true},
		Mode:           Modes{Badge: Contact, Slide: Off, TapTap: Off, Remote: Off, HandsFree: Off},
	}
	if c != want {
		t.Fatalf("Default = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Default does not validate: %v", err)
	}
}

const fullFile = "\xEF\xBB\xBFlintel-reader-config 1\r\n" + `# Main building, every setting written out.
name = Paris #2
description = Doors of the east wing = ground floor, "A" & 'B' — été
site_key_id = paris-2024_A

  # indented comment
reader_settings = off
tech.desfire = off
tech.plus_sl3 = on
tech.classic_sl1 = on
tech.ultralight_c = on
tech.blue_mobile_id = on
tech.nfc_hce = on
tech.cps3 = on
tech.125khz = on
mode.badge = very_short
mode.slide = short
mode.tap_tap	=	medium
mode.remote = long
mode.hands_free = contact
remote.1 = on
remote.2 = on
`

func fullConfig() Config {
	return Config{
		Name:           "Paris #2",
		Description:    `Doors of the east wing = ground floor, "A" & 'B' — été`,
		SiteKeyID:      "paris-2024_A",
		ReaderSettings: false,
		Tech: Tech{DESFire: false, PlusSL3: true, ClassicSL1: true, UltralightC: true,
			BlueMobileID: true, NFCHCE: true, CPS3: true, LF125kHz: true},
		Mode:   Modes{Badge: VeryShort, Slide: Short, TapTap: Medium, Remote: Long, HandsFree: Contact},
		Remote: Remote{Button1: true, Button2: true},
	}
}

func TestFullFile(t *testing.T) {
	if got, want := mustParse(t, fullFile), fullConfig(); got != want {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// Key order does not matter.
	lines := strings.Split(strings.TrimSuffix(fullFile, "\n"), "\n")
	rev := []string{lines[0]}
	for i := len(lines) - 1; i > 0; i-- {
		rev = append(rev, lines[i])
	}
	if got := mustParse(t, strings.Join(rev, "\n")); got != fullConfig() {
		t.Fatalf("reversed file: got %+v", got)
	}
}

func TestRoundTrip(t *testing.T) {
	allOff := Default("x")
	allOff.Tech = Tech{NFCHCE: true}
	allOff.Mode = Modes{Off, Off, Off, Off, Off}
	allOff.ReaderSettings = false
	configs := []Config{
		Default("London"),
		fullConfig(),
		allOff,
		{Name: strings.Repeat("é", MaxNameLen), Description: strings.Repeat("𝄞", MaxDescriptionLen),
			SiteKeyID: strings.Repeat("k", MaxSiteKeyIDLen), Tech: Tech{BlueMobileID: true},
			Mode: Modes{Long, Long, Long, Long, Long}},
		{Name: "= # a=b #", Description: "# not a comment", Tech: Tech{CPS3: true},
			Mode: Modes{Off, Off, Off, Off, Contact}},
	}
	for _, c := range configs {
		if err := c.Validate(); err != nil {
			t.Fatalf("%+v does not validate: %v", c, err)
		}
		text := c.Format()
		got, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(Format(%+v)): %v\n%s", c, err, text)
		}
		if got != c {
			t.Fatalf("round trip: got %+v, want %+v\n%s", got, c, text)
		}
		if again := got.Format(); !bytes.Equal(again, text) {
			t.Fatalf("Format is not stable:\n%s\n%s", text, again)
		}
	}
}

// The canonical file is part of the documented format: keep it in step
// with FORMAT.md.
func TestFormatCanonical(t *testing.T) {
	want := `lintel-reader-config 1
# The Blue Mobile ID configuration name, unique in the account.
name = London
description =
# Empty: the site's default key.
site_key_id =
# The preview's "Reader" row: reader settings besides chip settings.
reader_settings = on
# Technologies the reader reads: on or off.
tech.desfire = on
tech.plus_sl3 = off
tech.classic_sl1 = off
tech.ultralight_c = off
tech.blue_mobile_id = on
tech.nfc_hce = off
tech.cps3 = off
tech.125khz = off
# Blue Mobile ID identification modes: off, contact, very_short, short, medium or long.
mode.badge = contact
mode.slide = off
mode.tap_tap = off
mode.remote = off
mode.hands_free = off
# Buttons of the remote mode: on or off.
remote.1 = off
remote.2 = off
`
	if got := string(Default("London").Format()); got != want {
		t.Fatalf("Format:\n%s\nwant:\n%s", got, want)
	}
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), want) {
		t.Errorf("FORMAT.md does not show the canonical file of Default(\"London\")")
	}
}

func TestDocsListEveryKey(t *testing.T) {
	md, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if !strings.Contains(string(md), "`"+f.key+"`") {
			t.Errorf("FORMAT.md does not document `%s`", f.key)
		}
		if !strings.Contains(string(pkg), "//\t"+f.key+" ") {
			t.Errorf("the package doc does not list %s", f.key)
		}
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Default("London"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"London","description":"","site_key_id":"","reader_settings":true,` +
		`"tech":{"desfire":true,"plus_sl3":false,"classic_sl1":false,"ultralight_c":false,"blue_mobile_id":true,"nfc_hce":false,"cps3":false,"125khz":false},` +
		`"mode":{"badge":"contact","slide":"off","tap_tap":"off","remote":"off","hands_free":"off"},` +
		`"remote":{"1":false,"2":false}}`
	if string(b) != want {
		t.Fatalf("JSON:\n%s\nwant\n%s", b, want)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil || back != Default("London") {
		t.Fatalf("unmarshal: %+v, %v", back, err)
	}
}

type wantErr struct {
	line int
	key  string
	msg  string // a part of the message
}

func TestErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		in   string
		want []wantErr
	}{
		{"empty file", "", []wantErr{{1, "", "the file is empty"}}},
		{"only a newline", "\n", []wantErr{{1, "", `must start with the line "lintel-reader-config 1", not ""`}}},
		{"no header", "name = London\n", []wantErr{{1, "", `must start with the line "lintel-reader-config 1", not "name = London"; add it`}}},
		{"comment before header", "# x\n" + hdr + "name = a\n", []wantErr{{1, "", "must start with the line"}}},
		{"indented header", " " + hdr + "name = a\n", []wantErr{{1, "", `the first line must be exactly "lintel-reader-config 1", with nothing before it`}}},
		{"other version", "lintel-reader-config 2\nname = a\n", []wantErr{{1, "", `version "2" of the reader configuration format is not supported`}}},
		{"binary", "\x00\x01PSE\x02\nname = a\n", []wantErr{{1, "", "binary, not UTF-8 text"}}},
		{"binary header not utf-8", "\xff\xfe\n", []wantErr{{1, "", "binary, not UTF-8 text"}}},

		{"missing name", hdr + "# no name\n\ntech.desfire = on\n", []wantErr{{4, "name", "name is missing; add a line name = ..."}}},
		{"missing name, header only", Header, []wantErr{{1, "name", "name is missing"}}},
		{"empty name", hdr + "name =\n", []wantErr{{2, "name", "name is required"}}},
		{"blank name", hdr + "name =   \t\n", []wantErr{{2, "name", "name is required"}}},
		{"name too long", hdr + "name = " + long(101) + "\n", []wantErr{{2, "name", "name is 101 characters long; it may be at most 100"}}},
		{"name too long in characters", hdr + "name = " + strings.Repeat("é", 101) + "\n", []wantErr{{2, "name", "101 characters"}}},
		{"name control character", hdr + "name = Lon\x01don\n", []wantErr{{2, "", "control character U+0001 at byte 11"}}},
		{"name C1 control", hdr + "name = Lon\u0085don\n", []wantErr{{2, "", "control character U+0085"}}},
		{"name bidi override", hdr + "name = abc\u202Edef\n", []wantErr{{2, "name", "U+202E (a control or invisible character)"}}},
		{"name line separator", hdr + "name = a\u2028b\n", []wantErr{{2, "name", "U+2028"}}},
		{"lone CR", hdr + "name = a\rb\n", []wantErr{{2, "", "control character U+000D"}}},
		{"comment control", hdr + "# a\x1bb\nname = a\n", []wantErr{{2, "", "U+001B"}}},

		{"unknown key, typo", hdr + "name = a\ntech.desfir = on\n", []wantErr{{3, "tech.desfir", `unknown key "tech.desfir"; did you mean tech.desfire?`}}},
		{"unknown key, no prefix", hdr + "name = a\ndesfire = on\n", []wantErr{{3, "desfire", "did you mean tech.desfire?"}}},
		{"unknown key, punctuation", hdr + "name = a\nremote_1 = on\n", []wantErr{{3, "remote_1", "did you mean remote.1?"}}},
		{"unknown key, long form", hdr + "name = a\ntech.mifare_desfire = on\n", []wantErr{{3, "tech.mifare_desfire", "did you mean tech.desfire?"}}},
		{"unknown key, mifare plus", hdr + "name = a\nmifare_plus_sl3 = on\n", []wantErr{{3, "mifare_plus_sl3", "did you mean tech.plus_sl3?"}}},
		{"unknown key, none close", hdr + "name = a\ncolour = red\n", []wantErr{{3, "colour", `unknown key "colour"; the keys are name, description`}}},
		{"key case, name missing too", hdr + "Name = a\n", []wantErr{{2, "Name", "did you mean name?"}, {2, "name", "name is missing"}}},
		{"duplicate key", hdr + "name = a\n\nname = b\n", []wantErr{{4, "name", "name is already set on line 2; each key may appear once"}}},
		{"duplicate after a bad value", hdr + "name = a\ntech.cps3 = x\ntech.cps3 = on\n", []wantErr{{3, "tech.cps3", "must be on or off"}, {4, "tech.cps3", "already set on line 3"}}},

		{"on/off", hdr + "name = a\n\ntech.desfire = maybe\n", []wantErr{{4, "tech.desfire", `tech.desfire must be on or off, not "maybe"`}}},
		{"on/off upper case", hdr + "name = a\ntech.nfc_hce = ON\n", []wantErr{{3, "tech.nfc_hce", `not "ON"; write on`}}},
		{"on/off true", hdr + "name = a\nremote.2 = false\n", []wantErr{{3, "remote.2", "; write off"}}},
		{"on/off empty", hdr + "name = a\nreader_settings =\n", []wantErr{{3, "reader_settings", `reader_settings must be on or off, not ""`}}},
		{"trailing comment", hdr + "name = a\ntech.cps3 = on # later\n", []wantErr{{3, "tech.cps3", "a comment must be on its own line"}}},
		{"range", hdr + "name = a\nmode.slide = far\n", []wantErr{{3, "mode.slide", `mode.slide must be off or a range (contact, very_short, short, medium, long), not "far"`}}},
		{"range on", hdr + "name = a\nmode.slide = on\n", []wantErr{{3, "mode.slide", "say how near the phone must be, e.g. mode.slide = short"}}},
		{"range 3m", hdr + "name = a\nmode.hands_free = Up to ~ 3m\n", []wantErr{{3, "mode.hands_free", `the longest range ("Up to ~ 3m") is long`}}},
		{"range spelling", hdr + "name = a\nmode.badge = Very Short\n", []wantErr{{3, "mode.badge", "; write very_short"}}},
		{"range empty", hdr + "name = a\nmode.badge =\n", []wantErr{{3, "mode.badge", `not ""`}}},

		{"no equals", hdr + "name = a\ntech.desfire on\n", []wantErr{{3, "", `found "tech.desfire on"; write tech.desfire = on`}}},
		{"colon", hdr + "name: London\n", []wantErr{{2, "", "write name = London"}, {2, "name", "name is missing"}}},
		{"bare key", hdr + "name = a\ntech.cps3\n", []wantErr{{3, "", "tech.cps3 has no value; write tech.cps3 = value"}}},
		{"other comment", hdr + "name = a\n// note\n", []wantErr{{3, "", "comments start with #"}}},
		{"garbage", hdr + "name = a\nhello world\n", []wantErr{{3, "", `expected key = value, found "hello world"`}}},
		{"no key", hdr + "name = a\n = on\n", []wantErr{{3, "", "there is no key before ="}}},

		{"site key id characters", hdr + "name = a\nsite_key_id = a b\n", []wantErr{{3, "site_key_id", `site_key_id may only hold letters, digits, - and _, not "a b"`}}},
		{"site key id non-ASCII", hdr + "name = a\nsite_key_id = clé\n", []wantErr{{3, "site_key_id", "may only hold letters"}}},
		{"site key id too long", hdr + "name = a\nsite_key_id = " + long(65) + "\n", []wantErr{{3, "site_key_id", "site_key_id is 65 characters long; it may be at most 64"}}},
		{"description too long", hdr + "name = a\ndescription = " + long(201) + "\n", []wantErr{{3, "description", "description is 201 characters long; it may be at most 200"}}},

		{"not UTF-8", hdr + "name = Lond\xffn\n", []wantErr{{2, "", "not valid UTF-8 text (byte 0xFF at byte 12); save the file as UTF-8"}}},
		{"NUL", hdr + "name = a\ntech.cps3 = o\x00n\n", []wantErr{{3, "", "NUL byte"}}},
		{"line too long", hdr + "name = a\n#" + long(MaxLineLen) + "\n", []wantErr{{3, "", "the line is 1025 bytes long; a line may be at most 1024 bytes"}}},
		{"long line counts without CR", hdr + "name = a\r\n#" + long(MaxLineLen) + "\r\n", []wantErr{{3, "", "1025 bytes"}}},

		{"blue mobile id without modes", hdr + "name = a\nmode.badge = off\n# end\n", []wantErr{{3, "mode.badge", "tech.blue_mobile_id is on but every mode.* is off"}}},
		{"blue mobile id without modes, last line", hdr + "mode.slide = off\nmode.badge = off\nname = a\n", []wantErr{{3, "mode.badge", "turn on a mode"}}},
		{"no technology", hdr + "name = a\ntech.blue_mobile_id = off\ntech.desfire = off\nmode.badge = off\n", []wantErr{{4, "tech.desfire", "every tech.* is off"}}},

		{"several errors in line order", hdr + "tech.desfire = 2\n# ok\nfoo = bar\nmode.slide = x\n", []wantErr{
			{2, "tech.desfire", "must be on or off"},
			{4, "foo", "unknown key"},
			{5, "mode.slide", "must be off or a range"},
			{5, "name", "name is missing"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			checkErrors(t, tt.in, c, err, tt.want)
		})
	}
}

func checkErrors(t *testing.T, in string, c Config, err error, want []wantErr) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse(%q) accepted: %+v", in, c)
	}
	if c != (Config{}) {
		t.Errorf("a failed Parse returned %+v, want the zero Config", c)
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T is not an ErrorList", err)
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		e := list[i]
		if e.Line != w.line || e.Key != w.key || !strings.Contains(e.Message, w.msg) {
			t.Errorf("error %d = {%d %q %q}, want {%d %q ...%q...}", i, e.Line, e.Key, e.Message, w.line, w.key, w.msg)
		}
	}
}

func TestErrorText(t *testing.T) {
	_, err := Parse([]byte(hdr + "name = a\n\ntech.desfire = maybe\n"))
	if got, want := err.Error(), `line 4: tech.desfire must be on or off, not "maybe"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 4 || e.Key != "tech.desfire" {
		t.Errorf("errors.As *Error: %+v", e)
	}
	_, err = Parse([]byte(hdr + "x\ny\n"))
	if got, want := err.Error(), "line 2: expected key = value, found \"x\"\nline 3: expected key = value, found \"y\"\nline 3: name is missing; add a line name = ... with the Blue Mobile ID configuration name"; got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if got := (&Error{Key: "name", Message: "m"}).Error(); got != "m" {
		t.Errorf("Error without a line = %q", got)
	}
}

func TestLongValuesAreQuotedShort(t *testing.T) {
	_, err := Parse([]byte(hdr + "name = a\ntech.cps3 = " + strings.Repeat("x", 900) + "\n"))
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), `xxx"…`) {
		t.Fatalf("message not cut: %v", err)
	}
}

func TestLimits(t *testing.T) {
	// At the limits, accepted.
	c := mustParse(t, hdr+"name = "+strings.Repeat("n", MaxNameLen)+"\ndescription = "+strings.Repeat("d", MaxDescriptionLen)+
		"\nsite_key_id = "+strings.Repeat("k", MaxSiteKeyIDLen)+"\n#"+strings.Repeat("c", MaxLineLen-1)+"\n")
	if len(c.Name) != MaxNameLen || len(c.Description) != MaxDescriptionLen || len(c.SiteKeyID) != MaxSiteKeyIDLen {
		t.Fatalf("limits: %+v", c)
	}

	// A file of exactly MaxSize bytes is read; one more byte is refused,
	// at the line where the limit falls.
	var b strings.Builder
	b.WriteString(hdr + "name = a\n")
	for b.Len() < MaxSize-1000 {
		b.WriteString("#" + strings.Repeat("c", 98) + "\n") // 100 bytes a line
	}
	b.WriteString("#" + strings.Repeat("c", MaxSize-b.Len()-2) + "\n")
	if b.Len() != MaxSize {
		t.Fatalf("built %d bytes", b.Len())
	}
	mustParse(t, b.String())
	over := b.String() + "#\n"
	lines := strings.Count(b.String(), "\n") + 1
	_, err := Parse([]byte(over))
	checkErrors(t, over, Config{}, err, []wantErr{{lines, "", "the file is 65538 bytes; a reader configuration may be at most 65536 bytes"}})
}

func TestTooManyErrors(t *testing.T) {
	in := hdr + "name = a\n" + strings.Repeat("tech.cps3 = x\n", 30)
	_, err := Parse([]byte(in))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != MaxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(list), MaxErrors+1)
	}
	last := list[MaxErrors]
	if last.Line != MaxErrors+3 || !strings.Contains(last.Message, "too many errors") {
		t.Fatalf("last error %+v", last)
	}
	for i, e := range list[:MaxErrors] {
		if e.Line != i+3 {
			t.Fatalf("error %d on line %d", i, e.Line)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := func(f func(*Config)) Config { c := Default("London"); f(&c); return c }
	tests := []struct {
		name string
		c    Config
		key  string
		msg  string
	}{
		{"zero", Config{}, "name", "name is required"},
		{"name spaces", bad(func(c *Config) { c.Name = " London" }), "name", "starts or ends with a space"},
		{"name newline", bad(func(c *Config) { c.Name = "Lon\ndon" }), "name", "U+000A"},
		{"name not UTF-8", bad(func(c *Config) { c.Name = "Lon\xffdon" }), "name", "not valid UTF-8"},
		{"description tab", bad(func(c *Config) { c.Description = "a\tb" }), "description", "U+0009"},
		{"site key id", bad(func(c *Config) { c.SiteKeyID = "a/b" }), "site_key_id", "may only hold"},
		{"empty range", bad(func(c *Config) { c.Mode.Slide = "" }), "mode.slide", "must be off or a range"},
		{"odd range", bad(func(c *Config) { c.Mode.Remote = "LONG" }), "mode.remote", "write long"},
		{"no mode", bad(func(c *Config) { c.Mode.Badge = Off }), "tech.blue_mobile_id", "every mode.* is off"},
		{"no tech", bad(func(c *Config) { c.Tech = Tech{} }), "tech.desfire", "every tech.* is off"},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		var e *Error
		if !errors.As(err, &e) || e.Key != tt.key || e.Line != 0 || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("%s: Validate = %v (%+v), want %s: ...%s...", tt.name, err, e, tt.key, tt.msg)
		}
	}
}

// FuzzParse: Parse never panics; what it accepts validates and survives
// Format unchanged; what it refuses it refuses with lines inside the input.
func FuzzParse(f *testing.F) {
	f.Add([]byte(hdr + "name = London\n"))
	f.Add([]byte(fullFile))
	f.Add(fullConfig().Format())
	f.Add([]byte(hdr + "name = a\ntech.desfire = maybe\nfoo\n= x\n"))
	f.Add([]byte(hdr + "name = a\nmode.badge = off\n"))
	f.Add([]byte("\xEF\xBB\xBF" + hdr + "name=x\r\n"))
	f.Add([]byte(hdr + "name = a\xff\n\x00"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkParse(t, in)
		// Most random inputs fail on the header; the same bytes after a
		// good header reach the settings.
		checkParse(t, append([]byte(hdr), in...))
	})
}

func checkParse(t *testing.T, in []byte) {
	t.Helper()
	c, err := Parse(in)
	if err == nil {
		if verr := c.Validate(); verr != nil {
			t.Fatalf("accepted %q but Validate says %v", in, verr)
		}
		text := c.Format()
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("Format of an accepted file does not parse: %v\n%s", err, text)
		}
		if back != c {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
		if again := back.Format(); !bytes.Equal(again, text) {
			t.Fatalf("Format is not stable:\n%s\n%s", text, again)
		}
		return
	}
	if c != (Config{}) {
		t.Fatalf("refused with a non-zero Config %+v", c)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 || len(list) > MaxErrors+1 {
		t.Fatalf("error %T with %d entries", err, len(list))
	}
	n := bytes.Count(in, []byte("\n"))
	if len(in) > 0 && in[len(in)-1] != '\n' {
		n++
	}
	prev := 0
	for _, e := range list {
		if e.Line < 1 || e.Line > max(n, 1) {
			t.Fatalf("line %d outside 1..%d: %v", e.Line, max(n, 1), e)
		}
		if e.Line < prev {
			t.Fatalf("errors out of line order: %v", err)
		}
		prev = e.Line
		if e.Message == "" {
			t.Fatalf("empty message on line %d", e.Line)
		}
	}
}
