package voucher

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testKey returns a fixed key, so failures reproduce.
func testKey(t testing.TB, b byte) PrivateKey {
	t.Helper()
	k, err := NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var issuedAt = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)

func same(a, b Voucher) bool {
	return a.Issuer == b.Issuer && a.ID == b.ID && a.Account == b.Account && a.Credits == b.Credits &&
		a.Issued.Equal(b.Issued) && a.Issued.Location() == time.UTC && b.Issued.Location() == time.UTC &&
		bytes.Equal(a.Signature, b.Signature)
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	v, text := Issue(k, "acct-1", "INV-2025.0042_a", 500, issuedAt)
	want := "lintel-voucher 1\nissuer: " + k.KeyID() + "\nid: INV-2025.0042_a\naccount: acct-1\ncredits: 500\nissued: 2025-06-01T09:30:00Z\nsignature: "
	if !strings.HasPrefix(string(text), want) || !strings.HasSuffix(string(text), "\n") || strings.Count(string(text), "\n") != 7 {
		t.Fatalf("text:\n%s\nwant it to start with:\n%s", text, want)
	}
	got, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if !same(got, v) {
		t.Fatalf("parsed %+v, issued %+v", got, v)
	}
	if !bytes.Equal(got.Marshal(), text) {
		t.Fatalf("re-encoded text differs:\n%s\n%s", got.Marshal(), text)
	}
	if err := got.Verify([]ed25519.PublicKey{k.Public()}); err != nil {
		t.Fatal(err)
	}
	// Limits are inclusive.
	for _, c := range []int64{1, MaxCredits} {
		_, text := Issue(k, "a", "b", c, issuedAt)
		if v, err := Parse(text); err != nil || v.Credits != c || v.Verify([]ed25519.PublicKey{k.Public()}) != nil {
			t.Fatalf("credits %d: %v", c, err)
		}
	}
	id64 := strings.Repeat("x", MaxIDLen)
	if _, err := Parse(mustIssue(k, id64, id64)); err != nil {
		t.Fatalf("64-character ids: %v", err)
	}
}

func mustIssue(k PrivateKey, account, id string) []byte {
	_, text := Issue(k, account, id, 10, issuedAt)
	return text
}

func TestIssueNormalizesTime(t *testing.T) {
	k := testKey(t, 1)
	paris := time.FixedZone("CEST", 2*3600)
	v, text := Issue(k, "a", "b", 5, time.Date(2025, 6, 1, 11, 30, 0, 999_999_999, paris))
	if !v.Issued.Equal(issuedAt) || v.Issued.Location() != time.UTC {
		t.Fatalf("issued %v, want %v", v.Issued, issuedAt)
	}
	if !bytes.Contains(text, []byte("issued: 2025-06-01T09:30:00Z\n")) {
		t.Fatalf("text: %s", text)
	}
}

func TestIssuePanicsOnBadInput(t *testing.T) {
	k := testKey(t, 1)
	for name, f := range map[string]func(){
		"zero key":    func() { Issue(PrivateKey{}, "a", "b", 1, issuedAt) },
		"credits 0":   func() { Issue(k, "a", "b", 0, issuedAt) },
		"credits big": func() { Issue(k, "a", "b", MaxCredits+1, issuedAt) },
		"account":     func() { Issue(k, "a b", "b", 1, issuedAt) },
		"id":          func() { Issue(k, "a", "", 1, issuedAt) },
		"time":        func() { Issue(k, "a", "b", 1, time.Time{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestTamperingBreaksTheSignature(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	both := []ed25519.PublicKey{a.Public(), b.Public()}
	v, text := Issue(a, "acct-1", "V1", 500, issuedAt)
	edits := []struct{ from, to string }{
		{"issuer: " + a.KeyID(), "issuer: " + b.KeyID()}, // claims the other trusted issuer
		{"id: V1", "id: V2"},
		{"id: V1", "id: v1"},
		{"account: acct-1", "account: acct-2"},
		{"credits: 500", "credits: 5000"},
		{"credits: 500", "credits: 501"},
		{"issued: 2025-06-01T09:30:00Z", "issued: 2025-06-01T09:30:01Z"},
	}
	for _, e := range edits {
		changed := strings.Replace(string(text), e.from, e.to, 1)
		if changed == string(text) {
			t.Fatalf("edit %q did not apply", e.from)
		}
		w, err := Parse([]byte(changed))
		if err != nil {
			t.Fatalf("%s -> %s: %v", e.from, e.to, err)
		}
		if err := w.Verify(both); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s -> %s: Verify = %v, want ErrBadSignature", e.from, e.to, err)
		}
	}
	// Every bit of the signature counts.
	for i := range v.Signature {
		w := v
		w.Signature = bytes.Clone(v.Signature)
		w.Signature[i] ^= 0x10
		if err := w.Verify(both); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("signature byte %d flipped: %v", i, err)
		}
	}
	// A signature moved onto another voucher of the same issuer.
	other, _ := Issue(a, "acct-1", "V1", 1, issuedAt)
	other.Signature = v.Signature
	if err := other.Verify(both); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("moved signature: %v", err)
	}
	if err := v.Verify(both); err != nil {
		t.Fatalf("the original stopped verifying: %v", err)
	}
}

func TestOtherIssuerRefused(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	v, _ := Issue(b, "acct-1", "V1", 500, issuedAt)
	for _, trusted := range [][]ed25519.PublicKey{
		nil,
		{a.Public()},
		// Keys of the wrong length are skipped, not a panic.
		{nil, ed25519.PublicKey{1, 2, 3}, a.Public()},
	} {
		err := v.Verify(trusted)
		if !errors.Is(err, ErrUnknownIssuer) || errors.Is(err, ErrBadSignature) {
			t.Errorf("trusted %d keys: %v, want ErrUnknownIssuer", len(trusted), err)
		}
		if err != nil && !strings.Contains(err.Error(), b.KeyID()) {
			t.Errorf("error does not name the issuer: %v", err)
		}
	}
	if err := v.Verify([]ed25519.PublicKey{a.Public(), b.Public()}); err != nil {
		t.Fatal(err)
	}
	// The same key listed twice, the first copy wrong: the right one still counts.
	if err := v.Verify([]ed25519.PublicKey{b.Public()[:31], b.Public()}); err != nil {
		t.Fatal(err)
	}
}

func TestLayoutIsForgiven(t *testing.T) {
	k := testKey(t, 3)
	v, text := Issue(k, "acct-1", "V1", 42, issuedAt)
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	variants := map[string]string{
		"crlf":         strings.Join(lines, "\r\n") + "\r\n",
		"no final eol": strings.TrimSuffix(string(text), "\n"),
		"indented":     "  " + strings.Join(lines, "\n\t ") + "  \n",
		"blank lines":  "\n\n" + strings.Join(lines, "\n\n") + "\n\n\n",
		"bom":          "\uFEFF" + string(text),
		"no spaces":    strings.ReplaceAll(string(text), ": ", ":"),
		"wide":         strings.ReplaceAll(strings.Replace(string(text), "lintel-voucher 1", "lintel-voucher \t 1", 1), ": ", " :\t "),
		"reordered":    strings.Join(append([]string{lines[0]}, lines[6], lines[5], lines[4], lines[3], lines[2], lines[1]), "\n"),
	}
	for name, s := range variants {
		got, err := Parse([]byte(s))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !same(got, v) || !bytes.Equal(got.Marshal(), text) {
			t.Errorf("%s: parsed %+v", name, got)
		}
		if err := got.Verify([]ed25519.PublicKey{k.Public()}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	k := testKey(t, 1)
	_, good := Issue(k, "acct-1", "V1", 500, issuedAt)
	g := string(good)
	sig := g[strings.Index(g, "signature: ")+len("signature: ") : len(g)-1]
	repl := func(from, to string) string {
		if !strings.Contains(g, from) {
			t.Fatalf("%q not in the voucher", from)
		}
		return strings.Replace(g, from, to, 1)
	}
	cases := []struct{ name, text, inErr string }{
		{"empty", "", "empty"},
		{"blank", " \n\r\n\t\n", "empty"},
		{"too large", g + strings.Repeat(" ", MaxSize), "at most 4096"},
		{"not a voucher", "hello world\n", "not a voucher"},
		{"header alone word", "lintel-voucher\n", "not a voucher"},
		{"header three words", repl("lintel-voucher 1", "lintel-voucher 1 x"), "not a voucher"},
		{"other format", repl("lintel-voucher 1", "lintel-voucher-issuer 1"), "not a voucher"},
		{"version", repl("lintel-voucher 1", "lintel-voucher 2"), `version "2" is not supported`},
		{"header only", "lintel-voucher 1\n", `"issuer" line is missing`},
		{"no colon", repl("credits: 500", "credits 500"), `line 5: "credits 500" is not a "key: value" line`},
		{"unknown field", repl("credits: 500", "credits: 500\nnote: hi"), `line 6: unknown field "note"`},
		{"upper-case key", repl("credits:", "Credits:"), `unknown field "Credits"`},
		{"duplicate", repl("credits: 500", "credits: 500\ncredits: 500"), `line 6: field "credits" appears again (first on line 5)`},
		{"missing issuer", repl("issuer: "+k.KeyID()+"\n", ""), `"issuer" line is missing`},
		{"missing id", repl("id: V1\n", ""), `"id" line is missing`},
		{"missing account", repl("account: acct-1\n", ""), `"account" line is missing`},
		{"missing credits", repl("credits: 500\n", ""), `"credits" line is missing`},
		{"missing issued", repl("issued: 2025-06-01T09:30:00Z\n", ""), `"issued" line is missing`},
		{"missing signature", repl("signature: "+sig+"\n", ""), `"signature" line is missing`},
		{"control char", repl("account: acct-1", "account: acct\x00-1"), "line 4 has a control character (U+0000)"},
		{"lone cr", repl("account: acct-1", "account: acct\r-1"), "control character"},
		{"c1 control", repl("account: acct-1", "account: acct\u0085-1"), "control character"},
		{"not utf-8", repl("account: acct-1", "account: acct\xff-1"), "line 4 is not UTF-8"},
		{"issuer short", repl("issuer: "+k.KeyID(), "issuer: abc"), "line 2: issuer \"abc\" is not a key id"},
		{"issuer upper", repl("issuer: "+k.KeyID(), "issuer: "+strings.ToUpper(k.KeyID())), "is not a key id"},
		{"issuer empty", repl("issuer: "+k.KeyID(), "issuer:"), "is not a key id"},
		{"issuer not hex", repl("issuer: "+k.KeyID(), "issuer: 0123456789abcdeg"), "is not a key id"},
		{"id empty", repl("id: V1", "id: "), `line 3: id "" must be 1 to 64`},
		{"id space", repl("id: V1", "id: V 1"), `has ' '`},
		{"id tab", repl("id: V1", "id: V\t1"), `has '\t'`},
		{"id slash", repl("id: V1", "id: V/1"), `has '/'`},
		{"id unicode", repl("id: V1", "id: Vé"), `has`},
		{"id long", repl("id: V1", "id: "+strings.Repeat("v", MaxIDLen+1)), "must be 1 to 64"},
		{"account empty", repl("account: acct-1", "account:"), `line 4: account "" must be 1 to 64`},
		{"account colon", repl("account: acct-1", "account: a:b"), `has ':'`},
		{"credits zero", repl("credits: 500", "credits: 0"), "from 1 to 1000000000"},
		{"credits negative", repl("credits: 500", "credits: -5"), "from 1 to 1000000000"},
		{"credits plus", repl("credits: 500", "credits: +500"), "plain digits"},
		{"credits leading zero", repl("credits: 500", "credits: 0500"), "plain digits"},
		{"credits too many", repl("credits: 500", "credits: 1000000001"), "from 1 to 1000000000"},
		{"credits overflow", repl("credits: 500", "credits: 99999999999999999999"), "plain digits"},
		{"credits fraction", repl("credits: 500", "credits: 5.5"), "plain digits"},
		{"credits words", repl("credits: 500", "credits: five"), "plain digits"},
		{"credits space", repl("credits: 500", "credits: 5 00"), "plain digits"},
		{"issued date only", repl("2025-06-01T09:30:00Z", "2025-06-01"), "RFC 3339 UTC"},
		{"issued offset", repl("2025-06-01T09:30:00Z", "2025-06-01T11:30:00+02:00"), "RFC 3339 UTC"},
		{"issued zero offset", repl("2025-06-01T09:30:00Z", "2025-06-01T09:30:00+00:00"), "RFC 3339 UTC"},
		{"issued fraction", repl("2025-06-01T09:30:00Z", "2025-06-01T09:30:00.5Z"), "RFC 3339 UTC"},
		{"issued lower z", repl("2025-06-01T09:30:00Z", "2025-06-01t09:30:00z"), "RFC 3339 UTC"},
		{"issued bad day", repl("2025-06-01T09:30:00Z", "2025-02-30T09:30:00Z"), "RFC 3339 UTC"},
		{"issued zero time", repl("2025-06-01T09:30:00Z", "0001-01-01T00:00:00Z"), "zero time"},
		{"issued year 0", repl("2025-06-01T09:30:00Z", "0000-06-01T09:30:00Z"), "years 1 to 9999"},
		{"signature empty", repl("signature: "+sig, "signature:"), "is 0 bytes"},
		{"signature short", repl("signature: "+sig, "signature: "+sig[4:]), "is 61 bytes"},
		{"signature 63 bytes", repl("signature: "+sig, "signature: "+sig[:84]), "is 63 bytes"},
		{"signature unpadded", repl("signature: "+sig, "signature: "+strings.TrimRight(sig, "=")), "base64"},
		{"signature url alphabet", repl("signature: "+sig, "signature: "+strings.Repeat("-", 86)+"=="), "base64"},
		{"signature padding bits", repl("signature: "+sig, "signature: "+sig[:85]+"B=="), "base64"},
		{"signature spaced", repl("signature: "+sig, "signature: "+sig[:40]+" "+sig[40:]), "base64"},
	}
	for _, c := range cases {
		if c.name == "signature padding bits" && sig[85] == 'B' {
			t.Fatal("test voucher's signature already ends in B")
		}
		v, err := Parse([]byte(c.text))
		if err == nil {
			t.Errorf("%s: parsed %+v", c.name, v)
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error does not wrap ErrMalformed: %v", c.name, err)
		}
		if !strings.Contains(err.Error(), c.inErr) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.inErr)
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("%s: error is more than one line: %q", c.name, err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("%s: error is %d bytes long", c.name, len(err.Error()))
		}
		if !reflect.DeepEqual(v, Voucher{}) {
			t.Errorf("%s: a failed Parse returned a partial voucher %+v", c.name, v)
		}
	}
}

// Verify checks the fields of a voucher that did not come from Parse.
func TestVerifyRefusesInvalidFields(t *testing.T) {
	k := testKey(t, 1)
	trusted := []ed25519.PublicKey{k.Public()}
	v, _ := Issue(k, "acct-1", "V1", 500, issuedAt)
	edits := map[string]func(*Voucher){
		"credits 0":        func(v *Voucher) { v.Credits = 0 },
		"credits negative": func(v *Voucher) { v.Credits = -500 },
		"credits too many": func(v *Voucher) { v.Credits = MaxCredits + 1 },
		"id":               func(v *Voucher) { v.ID = "V1\nextra: x" },
		"account":          func(v *Voucher) { v.Account = "" },
		"issuer":           func(v *Voucher) { v.Issuer = "" },
		"fractional time":  func(v *Voucher) { v.Issued = v.Issued.Add(time.Millisecond) },
		"zero time":        func(v *Voucher) { v.Issued = time.Time{} },
		"year 10000":       func(v *Voucher) { v.Issued = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"no signature":     func(v *Voucher) { v.Signature = nil },
		"long signature":   func(v *Voucher) { v.Signature = append(bytes.Clone(v.Signature), 0) },
	}
	for name, edit := range edits {
		w := v
		edit(&w)
		if err := w.Verify(trusted); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, want ErrMalformed", name, err)
		}
	}
	// The time's location is not part of the voucher.
	w := v
	w.Issued = v.Issued.In(time.FixedZone("X", -5*3600))
	if err := w.Verify(trusted); err != nil {
		t.Fatal(err)
	}
}

func TestCheckers(t *testing.T) {
	for _, s := range []string{"a", "A-z_0.9", strings.Repeat("z", 64)} {
		if err := CheckID(s); err != nil {
			t.Errorf("CheckID(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", " a", "a b", "a/b", "é", strings.Repeat("z", 65)} {
		if CheckID(s) == nil {
			t.Errorf("CheckID(%q) accepted", s)
		}
	}
	if CheckCredits(1) != nil || CheckCredits(MaxCredits) != nil || CheckCredits(0) == nil || CheckCredits(MaxCredits+1) == nil {
		t.Error("CheckCredits bounds")
	}
	if CheckIssued(issuedAt) != nil || CheckIssued(time.Time{}) == nil || CheckIssued(issuedAt.Add(1)) == nil {
		t.Error("CheckIssued")
	}
}

// The example in FORMAT.md is a real voucher; keep the document honest.
func TestFormatDocExample(t *testing.T) {
	doc := readDoc(t)
	pubText := between(t, doc, "lintel-voucher-issuer 1\n", "```")
	pub, err := ParsePublicKey([]byte("lintel-voucher-issuer 1\n" + pubText))
	if err != nil {
		t.Fatal(err)
	}
	text := between(t, doc, "lintel-voucher 1\n", "```")
	v, err := Parse([]byte("lintel-voucher 1\n" + text))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Fatal(err)
	}
	signed := between(t, doc, "(the header and the five fields", "The header line")
	if !strings.Contains(strings.ReplaceAll(signed, `\n`, "\n"), string(v.SignedBytes())) {
		t.Fatalf("FORMAT.md's signed bytes differ from\n%q", v.SignedBytes())
	}
}

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// between returns the text after the first start, up to the next end.
func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("%q not found", start)
	}
	before, _, ok := strings.Cut(after, end)
	if !ok {
		t.Fatalf("%q not found after %q", end, start)
	}
	return before
}
