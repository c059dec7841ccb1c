package exchange

import (
	"errors"
	"fmt"
)

// ProtocolVersion is the exchange version a reader announces in its challenge.
const ProtocolVersion byte = 1

// Field limits.
const (
	NonceSize       = 16
	MaxIDLen        = 64  // reader, site and card ids
	MaxSignatureLen = 72  // ASN.1 ECDSA P-256: SEQUENCE of two ≤33-byte INTEGERs
	MaxKeyLen       = 128 // PKIX DER of a P-256 key is 91 bytes
)

// Nonce is the reader's fresh random challenge value.
type Nonce [NonceSize]byte

// Message errors.
var (
	ErrMalformed           = errors.New("exchange: malformed message")
	ErrWrongType           = errors.New("exchange: unexpected message type")
	ErrEmptyID             = errors.New("exchange: id is empty")
	ErrIDTooLong           = errors.New("exchange: id too long")
	ErrIDNotPrintable      = errors.New("exchange: id is not printable ASCII")
	ErrEmptySignature      = errors.New("exchange: signature is empty")
	ErrSignatureTooLong    = errors.New("exchange: signature too long")
	ErrUnknownReason       = errors.New("exchange: unknown denial reason")
	ErrInconsistentVerdict = errors.New("exchange: inconsistent verdict")
	ErrBadKeyLength        = errors.New("exchange: device key is empty or too long")
)

// Message is one of Challenge, Presentation, Verdict, Receipt, Enrollment, Enrolled.
type Message interface {
	Type() Type
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// Challenge opens an exchange (reader → phone).
//
//	version u8 | nonce [16] | reader id str8 | site id str8
type Challenge struct {
	Version  byte
	Nonce    Nonce
	ReaderID string
	SiteID   string
}

// Presentation answers a challenge (phone → reader). It echoes the nonce so
// the reader can tell a replayed presentation (an old nonce) from a forged one.
//
//	nonce [16] | card id str8 | signature bytes8
type Presentation struct {
	Nonce     Nonce
	CardID    string
	Signature []byte // over SignedMessage(Nonce, reader id, CardID)
}

// Verdict ends an exchange (reader → phone). It carries the challenge's nonce,
// so a recorded verdict means nothing in another exchange. A verdict that
// answers a presentation is signed with the cluster's verdict key (see
// VerdictMessage), so a phone can tell a real delete instruction from a
// rogue reader's.
//
//	flags u8 (bit 0 granted, bit 1 delete, bit 2 signed) | reason u8 | nonce [16] | signature str8 (if signed)
type Verdict struct {
	Granted   bool
	Reason    Reason // ReasonNone if and only if granted
	Delete    bool   // the phone must delete the card and send a Receipt
	Nonce     Nonce
	Signature []byte // Ed25519, 64 bytes, or none
}

// Receipt confirms that the phone deleted a card (phone → reader).
//
//	card id str8 | signature bytes8
type Receipt struct {
	CardID    string
	Signature []byte // over command.DeletionReceiptMessage(CardID)
}

// Enrollment asks an armed reader to bind this phone (phone → reader),
// sent instead of a Presentation (seed 002: enrollment at a reader).
//
//	nonce [16] | device key bytes8 (PKIX DER) | signature bytes8
type Enrollment struct {
	Nonce     Nonce
	DeviceKey []byte
	Signature []byte // over command.EnrollmentMessage(Nonce, reader id, DeviceKey)
}

// Enrolled tells the phone the id of its new card (reader → phone).
//
//	nonce [16] | card id str8
type Enrolled struct {
	Nonce  Nonce
	CardID string
}

const (
	flagGranted = 1 << 0
	flagDelete  = 1 << 1
	flagSigned  = 1 << 2
)

// VerdictSignatureSize is the size of an Ed25519 signature.
const VerdictSignatureSize = 64

func (Challenge) Type() Type    { return TypeChallenge }
func (Presentation) Type() Type { return TypePresentation }
func (Verdict) Type() Type      { return TypeVerdict }
func (Receipt) Type() Type      { return TypeReceipt }
func (Enrollment) Type() Type   { return TypeEnrollment }
func (Enrolled) Type() Type     { return TypeEnrolled }

// Validate checks every field limit.
func (e Enrollment) Validate() error {
	if len(e.DeviceKey) == 0 || len(e.DeviceKey) > MaxKeyLen {
		return fmt.Errorf("%w (%d bytes, at most %d)", ErrBadKeyLength, len(e.DeviceKey), MaxKeyLen)
	}
	return checkSignature(e.Signature)
}

// Validate checks every field limit.
func (e Enrolled) Validate() error { return checkID("card id", e.CardID) }

// Marshal encodes the payload; it refuses a message that Unmarshal would refuse.
func (e Enrollment) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, NonceSize+2+len(e.DeviceKey)+len(e.Signature))
	b = append(b, e.Nonce[:]...)
	b = appendStr8(b, string(e.DeviceKey))
	return appendStr8(b, string(e.Signature)), nil
}

// Marshal encodes the payload; it refuses a message that Unmarshal would refuse.
func (e Enrolled) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, NonceSize+1+len(e.CardID))
	b = append(b, e.Nonce[:]...)
	return appendStr8(b, e.CardID), nil
}

// Unmarshal decodes a payload.
func (e *Enrollment) Unmarshal(b []byte) error {
	d := decoder{b: b}
	var m Enrollment
	d.nonce(&m.Nonce)
	m.DeviceKey = d.key()
	m.Signature = d.signature()
	if err := d.finish(); err != nil {
		return err
	}
	*e = m
	return nil
}

// Unmarshal decodes a payload.
func (e *Enrolled) Unmarshal(b []byte) error {
	d := decoder{b: b}
	var m Enrolled
	d.nonce(&m.Nonce)
	m.CardID = d.id("card id")
	if err := d.finish(); err != nil {
		return err
	}
	*e = m
	return nil
}

// Validate checks every field limit.
func (c Challenge) Validate() error {
	if c.Version != ProtocolVersion {
		return fmt.Errorf("%w: protocol version %d, this node speaks %d", ErrBadVersion, c.Version, ProtocolVersion)
	}
	if err := checkID("reader id", c.ReaderID); err != nil {
		return err
	}
	return checkID("site id", c.SiteID)
}

// Validate checks every field limit.
func (p Presentation) Validate() error {
	if err := checkID("card id", p.CardID); err != nil {
		return err
	}
	return checkSignature(p.Signature)
}

// Validate checks that granted, reason and delete agree: a grant has no
// reason and no delete instruction; a denial always says why.
func (v Verdict) Validate() error {
	if _, ok := reasonCode[v.Reason]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownReason, string(v.Reason))
	}
	switch {
	case v.Granted && v.Reason != ReasonNone:
		return fmt.Errorf("%w: granted with reason %s", ErrInconsistentVerdict, v.Reason)
	case v.Granted && v.Delete:
		return fmt.Errorf("%w: granted with a delete instruction", ErrInconsistentVerdict)
	case !v.Granted && v.Reason == ReasonNone:
		return fmt.Errorf("%w: denied without a reason", ErrInconsistentVerdict)
	case v.Signature != nil && len(v.Signature) != VerdictSignatureSize:
		return fmt.Errorf("%w: a verdict signature is %d bytes, not %d", ErrMalformed, len(v.Signature), VerdictSignatureSize)
	}
	return nil
}

// Validate checks every field limit.
func (r Receipt) Validate() error {
	if err := checkID("card id", r.CardID); err != nil {
		return err
	}
	return checkSignature(r.Signature)
}

// Marshal encodes the payload; it refuses a message that Unmarshal would refuse.
func (c Challenge) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+NonceSize+2+len(c.ReaderID)+len(c.SiteID))
	b = append(b, c.Version)
	b = append(b, c.Nonce[:]...)
	b = appendStr8(b, c.ReaderID)
	return appendStr8(b, c.SiteID), nil
}

// Marshal encodes the payload; it refuses a message that Unmarshal would refuse.
func (p Presentation) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, NonceSize+2+len(p.CardID)+len(p.Signature))
	b = append(b, p.Nonce[:]...)
	b = appendStr8(b, p.CardID)
	return appendStr8(b, string(p.Signature)), nil
}

// Marshal encodes the payload; it refuses a message that Unmarshal would refuse.
func (v Verdict) Marshal() ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	var flags byte
	if v.Granted {
		flags |= flagGranted
	}
	if v.Delete {
		flags |= flagDelete
	}
	if v.Signature != nil {
		flags |= flagSigned
	}
	b := make([]byte, 0, 3+NonceSize+len(v.Signature))
	b = append(b, flags, reasonCode[v.Reason])
	b = append(b, v.Nonce[:]...)
	if v.Signature != nil {
		b = appendStr8(b, string(v.Signature))
	}
	return b, nil
}

// Marshal encodes the payload; it refuses a message that Unmarshal would refuse.
func (r Receipt) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 2+len(r.CardID)+len(r.Signature))
	b = appendStr8(b, r.CardID)
	return appendStr8(b, string(r.Signature)), nil
}

// Unmarshal decodes a payload. The encoding is canonical: what decodes
// re-encodes to the same bytes.
func (c *Challenge) Unmarshal(b []byte) error {
	d := decoder{b: b}
	var m Challenge
	m.Version = d.u8("protocol version")
	d.nonce(&m.Nonce)
	m.ReaderID = d.id("reader id")
	m.SiteID = d.id("site id")
	if err := d.finish(); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	*c = m
	return nil
}

// Unmarshal decodes a payload.
func (p *Presentation) Unmarshal(b []byte) error {
	d := decoder{b: b}
	var m Presentation
	d.nonce(&m.Nonce)
	m.CardID = d.id("card id")
	m.Signature = d.signature()
	if err := d.finish(); err != nil {
		return err
	}
	*p = m
	return nil
}

// Unmarshal decodes a payload.
func (v *Verdict) Unmarshal(b []byte) error {
	d := decoder{b: b}
	var m Verdict
	flags := d.u8("flags")
	code := d.u8("reason")
	d.nonce(&m.Nonce)
	if flags&flagSigned != 0 {
		n := int(d.u8("signature length"))
		if d.err == nil && n != VerdictSignatureSize {
			d.err = fmt.Errorf("%w: a verdict signature is %d bytes, not %d", ErrMalformed, n, VerdictSignatureSize)
		}
		m.Signature = append([]byte(nil), d.take("signature", VerdictSignatureSize)...)
	}
	if err := d.finish(); err != nil {
		return err
	}
	if flags&^(flagGranted|flagDelete|flagSigned) != 0 {
		return fmt.Errorf("%w: unknown verdict flags 0x%02x", ErrMalformed, flags)
	}
	if int(code) >= len(reasons) {
		return fmt.Errorf("%w code %d", ErrUnknownReason, code)
	}
	m.Granted, m.Delete, m.Reason = flags&flagGranted != 0, flags&flagDelete != 0, reasons[code]
	if err := m.Validate(); err != nil {
		return err
	}
	*v = m
	return nil
}

// Unmarshal decodes a payload.
func (r *Receipt) Unmarshal(b []byte) error {
	d := decoder{b: b}
	var m Receipt
	m.CardID = d.id("card id")
	m.Signature = d.signature()
	if err := d.finish(); err != nil {
		return err
	}
	*r = m
	return nil
}

// Encode frames a message.
func Encode(m Message) (Frame, error) {
	p, err := m.Marshal()
	if err != nil {
		return Frame{}, err
	}
	return Frame{Type: m.Type(), Payload: p}, nil
}

// Decode turns a frame into its message.
func Decode(f Frame) (Message, error) {
	var m Message
	switch f.Type {
	case TypeChallenge:
		m = new(Challenge)
	case TypePresentation:
		m = new(Presentation)
	case TypeVerdict:
		m = new(Verdict)
	case TypeReceipt:
		m = new(Receipt)
	case TypeEnrollment:
		m = new(Enrollment)
	case TypeEnrolled:
		m = new(Enrolled)
	default:
		return nil, fmt.Errorf("%w %d", ErrUnknownType, byte(f.Type))
	}
	if err := m.Unmarshal(f.Payload); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Type, err)
	}
	return m, nil
}

// DecodeInto decodes f into m, refusing a frame of another type: a transport
// knows which message comes next.
func DecodeInto(f Frame, m Message) error {
	if f.Type != m.Type() {
		return fmt.Errorf("%w: got %s, want %s", ErrWrongType, f.Type, m.Type())
	}
	if err := m.Unmarshal(f.Payload); err != nil {
		return fmt.Errorf("%s: %w", f.Type, err)
	}
	return nil
}

func checkID(field, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: %w", field, ErrEmptyID)
	case len(s) > MaxIDLen:
		return fmt.Errorf("%s: %w (%d bytes, at most %d)", field, ErrIDTooLong, len(s), MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Errorf("%s: %w (byte 0x%02x at %d)", field, ErrIDNotPrintable, s[i], i)
		}
	}
	return nil
}

func checkSignature(sig []byte) error {
	switch {
	case len(sig) == 0:
		return ErrEmptySignature
	case len(sig) > MaxSignatureLen:
		return fmt.Errorf("%w (%d bytes, at most %d)", ErrSignatureTooLong, len(sig), MaxSignatureLen)
	}
	return nil
}

// appendStr8 writes a u8 length and the bytes; callers have validated the
// length, so it fits.
func appendStr8(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// decoder reads fields in order and keeps the first error, so Unmarshal reads
// as a list of fields.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: %s needs %d bytes, %d left", ErrTruncated, field, n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(field string) byte {
	if v := d.take(field, 1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) nonce(n *Nonce) { copy(n[:], d.take("nonce", NonceSize)) }

// id reads a str8 and checks it before taking the bytes, so a too-long length
// is reported as such even when the payload is short.
func (d *decoder) id(field string) string {
	n := int(d.u8(field + " length"))
	if d.err != nil {
		return ""
	}
	if n > MaxIDLen {
		d.err = fmt.Errorf("%s: %w (%d bytes, at most %d)", field, ErrIDTooLong, n, MaxIDLen)
		return ""
	}
	s := string(d.take(field, n))
	if d.err == nil {
		d.err = checkID(field, s)
	}
	return s
}

func (d *decoder) signature() []byte {
	n := int(d.u8("signature length"))
	if d.err != nil {
		return nil
	}
	if n > MaxSignatureLen {
		d.err = fmt.Errorf("%w (%d bytes, at most %d)", ErrSignatureTooLong, n, MaxSignatureLen)
		return nil
	}
	v := d.take("signature", n)
	if d.err == nil {
		d.err = checkSignature(v)
	}
	return append([]byte(nil), v...) // do not alias the frame buffer
}

func (d *decoder) key() []byte {
	n := int(d.u8("device key length"))
	if d.err != nil {
		return nil
	}
	if n == 0 || n > MaxKeyLen {
		d.err = fmt.Errorf("%w (%d bytes, at most %d)", ErrBadKeyLength, n, MaxKeyLen)
		return nil
	}
	return append([]byte(nil), d.take("device key", n)...)
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return d.err
}
