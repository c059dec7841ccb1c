package exchange

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

var testNonce = Nonce{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

type device struct {
	key *ecdsa.PrivateKey
	der []byte
}

func newDevice(t testing.TB) device {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return device{key: k, der: der}
}

// sign is what wallet (*Card).Sign does.
func (d device) sign(msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, d.key, sum[:])
}

func testChallenge() Challenge {
	return Challenge{Version: ProtocolVersion, Nonce: testNonce, ReaderID: "reader-lobby-1", SiteID: "site-london"}
}

// sampleMessages has one valid value of each kind, with extremes.
func sampleMessages() []Message {
	sig72 := bytes.Repeat([]byte{0x30}, MaxSignatureLen)
	long := strings.Repeat("x", MaxIDLen)
	return []Message{
		&Challenge{Version: 1, Nonce: testNonce, ReaderID: "r1", SiteID: "s1"},
		&Challenge{Version: 1, ReaderID: long, SiteID: " ~"},
		&Presentation{Nonce: testNonce, CardID: "card-1", Signature: []byte{1, 2, 3}},
		&Presentation{CardID: long, Signature: sig72},
		&Verdict{Granted: true, Nonce: testNonce},
		&Verdict{Reason: ReasonRevoked, Delete: true, Nonce: testNonce},
		&Verdict{Reason: ReasonReplay},
		&Receipt{CardID: "card-1", Signature: sig72},
		&Verdict{Reason: ReasonOffline, Nonce: testNonce},
		&Verdict{Reason: ReasonRevoked, Delete: true, Nonce: testNonce, Signature: bytes.Repeat([]byte{9}, 64)},
		&Enrollment{Nonce: testNonce, DeviceKey: []byte{0x30, 0x59}, Signature: []byte{0x30, 1}},
		&Enrollment{DeviceKey: bytes.Repeat([]byte{4}, MaxKeyLen), Signature: sig72},
		&Enrolled{Nonce: testNonce, CardID: "card-9"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		f, err := Encode(m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
		wire := bytes.Clone(buf.Bytes())
		g, err := ReadFrame(&buf)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		got, err := Decode(g)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
		if _, err := ReadFrame(&buf); err != io.EOF {
			t.Fatalf("after the frame: %v, want io.EOF", err)
		}
		if len(wire) > MaxFrameSize {
			t.Fatalf("%T: %d bytes", m, len(wire))
		}
	}
}

// TestWireBytes pins the encoding byte for byte.
func TestWireBytes(t *testing.T) {
	cases := []struct {
		m    Message
		want []byte
	}{
		{&Challenge{Version: 1, Nonce: testNonce, ReaderID: "r1", SiteID: "s"},
			append(append([]byte{'L', 1, 1, 0, 22, 1}, testNonce[:]...), 2, 'r', '1', 1, 's')},
		{&Presentation{Nonce: testNonce, CardID: "c", Signature: []byte{9, 8}},
			append(append([]byte{'L', 1, 2, 0, 21}, testNonce[:]...), 1, 'c', 2, 9, 8)},
		{&Verdict{Reason: ReasonLost, Delete: true, Nonce: testNonce},
			append([]byte{'L', 1, 3, 0, 18, 0x02, 5}, testNonce[:]...)},
		{&Verdict{Granted: true, Nonce: testNonce},
			append([]byte{'L', 1, 3, 0, 18, 0x01, 0}, testNonce[:]...)},
		{&Receipt{CardID: "c", Signature: []byte{7}},
			[]byte{'L', 1, 4, 0, 4, 1, 'c', 1, 7}},
	}
	for _, c := range cases {
		f, err := Encode(c.m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%T:\n got %x\nwant %x", c.m, got, c.want)
		}
	}
}

func TestReasonCodesMatchSpec(t *testing.T) {
	spec := "unknown_card bad_signature not_activated revoked lost expired not_yet_valid uses_exhausted wrong_reader outside_schedule replay offline"
	for i, w := range strings.Fields(spec) {
		if reasons[i+1] != Reason(w) {
			t.Errorf("code %d = %q, want %q", i+1, reasons[i+1], w)
		}
	}
	if len(reasons) != 13 {
		t.Errorf("%d reasons", len(reasons))
	}
}

func TestReadFrameTruncatedAtEveryOffset(t *testing.T) {
	for _, m := range sampleMessages() {
		f, _ := Encode(m)
		wire, _ := AppendFrame(nil, f)
		for i := range wire {
			_, err := ReadFrame(bytes.NewReader(wire[:i]))
			want := ErrTruncated
			if i == 0 {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Fatalf("%T cut at %d/%d: %v, want %v", m, i, len(wire), err, want)
			}
		}
	}
}

func TestUnmarshalTruncatedAtEveryOffset(t *testing.T) {
	for _, m := range sampleMessages() {
		p, _ := m.Marshal()
		for i := range p {
			n := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			if err := n.Unmarshal(p[:i]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%T cut at %d/%d: %v", m, i, len(p), err)
			}
		}
		n := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
		if err := n.Unmarshal(append(bytes.Clone(p), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T with a trailing byte: %v", m, err)
		}
	}
}

// trickle hands out one byte per Read, as a slow stream does.
type trickle struct{ r io.Reader }

func (t trickle) Read(p []byte) (int, error) { return t.r.Read(p[:min(1, len(p))]) }

func TestReadFrameErrors(t *testing.T) {
	big := make([]byte, MaxPayload+1)
	cases := []struct {
		name string
		wire []byte
		want error
	}{
		{"bad magic", []byte{'X', 1, 1, 0, 0}, ErrBadMagic},
		{"http", []byte("GET / HTTP/1.1\r\n"), ErrBadMagic},
		{"version 0", []byte{'L', 0, 1, 0, 0}, ErrBadVersion},
		{"version 2", []byte{'L', 2, 1, 0, 0}, ErrBadVersion},
		{"type 0", []byte{'L', 1, 0, 0, 0}, ErrUnknownType},
		{"type 7", []byte{'L', 1, 7, 0, 0}, ErrUnknownType},
		{"type 255", []byte{'L', 1, 255, 0, 0}, ErrUnknownType},
		{"length max+1", []byte{'L', 1, 1, 0x03, 0xfc}, ErrFrameTooLarge},
		{"length 65535", []byte{'L', 1, 1, 0xff, 0xff}, ErrFrameTooLarge},
		{"length larger than data", []byte{'L', 1, 1, 0, 10, 1, 2}, ErrTruncated},
	}
	for _, c := range cases {
		if _, err := ReadFrame(bytes.NewReader(c.wire)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := WriteFrame(io.Discard, Frame{Type: TypeChallenge, Payload: big}); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("write oversized: %v", err)
	}
	if err := WriteFrame(io.Discard, Frame{Type: 9}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("write unknown type: %v", err)
	}
	// The largest legal frame passes, even from a byte-at-a-time stream.
	wire, err := AppendFrame(nil, Frame{Type: TypeVerdict, Payload: big[:MaxPayload]})
	if err != nil || len(wire) != MaxFrameSize {
		t.Fatalf("max frame: %d bytes, %v", len(wire), err)
	}
	if f, err := ReadFrame(trickle{bytes.NewReader(wire)}); err != nil || len(f.Payload) != MaxPayload {
		t.Fatalf("max frame: %v", err)
	}
	// An I/O error is passed through, not disguised as truncation.
	boom := errors.New("boom")
	if _, err := ReadFrame(io.MultiReader(bytes.NewReader(wire[:2]), errReader{boom})); !errors.Is(err, boom) {
		t.Fatalf("io error: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestReadFrameAllocatesAtMostTheLimit(t *testing.T) {
	// The payload buffer is sized by the header, never by what the peer keeps sending.
	wire, _ := AppendFrame(nil, Frame{Type: TypeVerdict, Payload: make([]byte, 18)})
	f, err := ReadFrame(bytes.NewReader(append(wire, make([]byte, 4096)...)))
	if err != nil || cap(f.Payload) != 18 {
		t.Fatalf("payload cap %d, %v", cap(f.Payload), err)
	}
}

func TestInvalidFieldsRefused(t *testing.T) {
	long := strings.Repeat("a", MaxIDLen+1)
	sig := []byte{1}
	cases := []struct {
		name string
		m    Message
		want error
	}{
		{"challenge version 0", &Challenge{Version: 0, ReaderID: "r", SiteID: "s"}, ErrBadVersion},
		{"challenge version 2", &Challenge{Version: 2, ReaderID: "r", SiteID: "s"}, ErrBadVersion},
		{"empty reader id", &Challenge{Version: 1, SiteID: "s"}, ErrEmptyID},
		{"long reader id", &Challenge{Version: 1, ReaderID: long, SiteID: "s"}, ErrIDTooLong},
		{"long site id", &Challenge{Version: 1, ReaderID: "r", SiteID: long}, ErrIDTooLong},
		{"newline in site id", &Challenge{Version: 1, ReaderID: "r", SiteID: "s\n"}, ErrIDNotPrintable},
		{"nul in reader id", &Challenge{Version: 1, ReaderID: "r\x00", SiteID: "s"}, ErrIDNotPrintable},
		{"utf-8 in card id", &Presentation{CardID: "carté", Signature: sig}, ErrIDNotPrintable},
		{"DEL in card id", &Presentation{CardID: "c\x7f", Signature: sig}, ErrIDNotPrintable},
		{"empty card id", &Presentation{Signature: sig}, ErrEmptyID},
		{"long card id", &Presentation{CardID: long, Signature: sig}, ErrIDTooLong},
		{"empty signature", &Presentation{CardID: "c"}, ErrEmptySignature},
		{"long signature", &Presentation{CardID: "c", Signature: make([]byte, 73)}, ErrSignatureTooLong},
		{"receipt long signature", &Receipt{CardID: "c", Signature: make([]byte, 73)}, ErrSignatureTooLong},
		{"receipt bad card id", &Receipt{CardID: "a b\t", Signature: sig}, ErrIDNotPrintable},
		{"granted with reason", &Verdict{Granted: true, Reason: ReasonLost}, ErrInconsistentVerdict},
		{"granted with delete", &Verdict{Granted: true, Delete: true}, ErrInconsistentVerdict},
		{"denied without reason", &Verdict{}, ErrInconsistentVerdict},
		{"unknown reason", &Verdict{Reason: "tired"}, ErrUnknownReason},
	}
	for _, c := range cases {
		if _, err := c.m.Marshal(); !errors.Is(err, c.want) {
			t.Errorf("marshal %s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestInvalidPayloadsRefused(t *testing.T) {
	n := testNonce[:]
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	long := append([]byte{65}, bytes.Repeat([]byte{'a'}, 65)...)
	cases := []struct {
		name string
		m    Message
		p    []byte
		want error
	}{
		{"challenge version 2", &Challenge{}, cat([]byte{2}, n, []byte{1, 'r', 1, 's'}), ErrBadVersion},
		{"challenge empty reader", &Challenge{}, cat([]byte{1}, n, []byte{0, 1, 's'}), ErrEmptyID},
		{"challenge long reader", &Challenge{}, cat([]byte{1}, n, long, []byte{1, 's'}), ErrIDTooLong},
		{"challenge long length, short data", &Challenge{}, cat([]byte{1}, n, []byte{200}), ErrIDTooLong},
		{"challenge control char", &Challenge{}, cat([]byte{1}, n, []byte{1, 'r', 1, 0x1b}), ErrIDNotPrintable},
		{"presentation sig 73", &Presentation{}, cat(n, []byte{1, 'c', 73}, make([]byte, 73)), ErrSignatureTooLong},
		{"presentation sig 255 short", &Presentation{}, cat(n, []byte{1, 'c', 255}), ErrSignatureTooLong},
		{"presentation empty sig", &Presentation{}, cat(n, []byte{1, 'c', 0}), ErrEmptySignature},
		{"presentation high byte", &Presentation{}, cat(n, []byte{1, 0x80, 1, 1}), ErrIDNotPrintable},
		{"verdict unknown flag", &Verdict{}, cat([]byte{0x08, 1}, n), ErrMalformed},
		{"verdict short signature", &Verdict{}, cat([]byte{0x04, 1}, n, []byte{63}, bytes.Repeat([]byte{1}, 63)), ErrMalformed},
		{"verdict signature missing", &Verdict{}, cat([]byte{0x04, 1}, n), ErrTruncated},
		{"verdict unknown reason", &Verdict{}, cat([]byte{0, 13}, n), ErrUnknownReason},
		{"verdict granted+reason", &Verdict{}, cat([]byte{1, 4}, n), ErrInconsistentVerdict},
		{"verdict granted+delete", &Verdict{}, cat([]byte{3, 0}, n), ErrInconsistentVerdict},
		{"verdict denied no reason", &Verdict{}, cat([]byte{0, 0}, n), ErrInconsistentVerdict},
		{"receipt empty", &Receipt{}, nil, ErrTruncated},
		{"receipt trailing", &Receipt{}, []byte{1, 'c', 1, 1, 0}, ErrMalformed},
	}
	for _, c := range cases {
		if err := c.m.Unmarshal(c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDecodeInto(t *testing.T) {
	f, _ := Encode(&Verdict{Granted: true, Nonce: testNonce})
	var p Presentation
	if err := DecodeInto(f, &p); !errors.Is(err, ErrWrongType) {
		t.Fatalf("%v", err)
	}
	var v Verdict
	if err := DecodeInto(f, &v); err != nil || !v.Granted || v.Nonce != testNonce {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := Decode(Frame{Type: 7}); !errors.Is(err, ErrUnknownType) {
		t.Fatal(err)
	}
}
