package exchange

import (
	"bytes"
	"testing"
	"time"
)

func seedFrames(f *testing.F) {
	for _, m := range sampleMessages() {
		fr, _ := Encode(m)
		wire, _ := AppendFrame(nil, fr)
		f.Add(wire)
	}
	f.Add([]byte{'L', 1, 1, 0xff, 0xff})
	f.Add([]byte{'L', 2, 1, 0, 0})
}

// FuzzReadFrame: never panic; a frame that reads writes back as the same
// bytes; whatever decodes re-encodes to the same payload.
func FuzzReadFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, wire []byte) {
		r := bytes.NewReader(wire)
		fr, err := ReadFrame(r)
		if err != nil {
			return
		}
		if len(fr.Payload) > MaxPayload {
			t.Fatalf("payload %d", len(fr.Payload))
		}
		back, err := AppendFrame(nil, fr)
		if err != nil {
			t.Fatal(err)
		}
		if consumed := len(wire) - r.Len(); !bytes.Equal(back, wire[:consumed]) {
			t.Fatalf("re-encoded %x, read %x", back, wire[:consumed])
		}
		m, err := Decode(fr)
		if err != nil {
			return
		}
		p, err := m.Marshal()
		if err != nil || !bytes.Equal(p, fr.Payload) {
			t.Fatalf("decoded %+v re-encodes to %x (%v), was %x", m, p, err, fr.Payload)
		}
	})
}

// FuzzUnmarshal feeds payloads to each message type directly.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range sampleMessages() {
		p, _ := m.Marshal()
		f.Add(byte(m.Type()), p)
	}
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		m, err := Decode(Frame{Type: Type(typ), Payload: payload})
		if err != nil {
			return
		}
		p, err := m.Marshal()
		if err != nil || !bytes.Equal(p, payload) {
			t.Fatalf("decoded %+v re-encodes to %x (%v), was %x", m, p, err, payload)
		}
		// Decoding must not alias the input buffer.
		for i := range payload {
			payload[i] ^= 0xff
		}
		if p2, _ := m.Marshal(); !bytes.Equal(p2, p) {
			t.Fatal("decoded message aliases the payload")
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	d := newDevice(b)
	c := testChallenge()
	p, _ := Respond(c, "card-000001", d.sign)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(p, c, d.der); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeVerify is the reader's work per presentation: read the
// frame, decode it, use the nonce, check the signature.
func BenchmarkDecodeVerify(b *testing.B) {
	d := newDevice(b)
	c := testChallenge()
	p, _ := Respond(c, "card-000001", d.sign)
	fr, _ := Encode(&p)
	wire, _ := AppendFrame(nil, fr)
	book := NewNonceBook(time.Hour, 1<<20)
	r := bytes.NewReader(wire)
	b.ReportAllocs()
	for b.Loop() {
		_ = book.Issue(c.Nonce, t0)
		r.Reset(wire)
		fr, err := ReadFrame(r)
		if err != nil {
			b.Fatal(err)
		}
		var got Presentation
		if err := DecodeInto(fr, &got); err != nil {
			b.Fatal(err)
		}
		if err := book.Use(got.Nonce, t0); err != nil {
			b.Fatal(err)
		}
		if err := Verify(got, c, d.der); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is the frame and message decoding alone.
func BenchmarkDecode(b *testing.B) {
	d := newDevice(b)
	p, _ := Respond(testChallenge(), "card-000001", d.sign)
	fr, _ := Encode(&p)
	wire, _ := AppendFrame(nil, fr)
	r := bytes.NewReader(wire)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(wire)
		fr, err := ReadFrame(r)
		if err != nil {
			b.Fatal(err)
		}
		var got Presentation
		if err := DecodeInto(fr, &got); err != nil {
			b.Fatal(err)
		}
	}
}
