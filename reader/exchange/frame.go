// Package exchange is the transport-free protocol layer of the credential
// exchange (SPEC 6.1): frames, the four messages, the signed message, nonce
// bookkeeping and signature checks. It does no I/O beyond the io.Reader and
// io.Writer it is handed and reads no clock, so every transport (the TCP
// reader link, BLE GATT) shares one byte-exact implementation.
package exchange

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame header: magic, version, type, 2-byte big-endian payload length.
const (
	Magic        byte = 0x4C // 'L': makes a stray connection fail on byte 0
	FrameVersion byte = 1
	HeaderSize        = 5
	// MaxFrameSize bounds a whole frame, header included: the largest message
	// (a challenge with two 64-byte ids) is under 160 bytes, and a small bound
	// keeps a hostile peer from making a reader allocate.
	MaxFrameSize = 1024
	MaxPayload   = MaxFrameSize - HeaderSize
)

// Type says which message a frame carries. Values are append-only.
type Type byte

const (
	TypeChallenge    Type = 1 // reader → phone
	TypePresentation Type = 2 // phone → reader
	TypeVerdict      Type = 3 // reader → phone
	TypeReceipt      Type = 4 // phone → reader, after a delete instruction
	TypeEnrollment   Type = 5 // phone → reader, instead of a presentation, at an armed reader
	TypeEnrolled     Type = 6 // reader → phone: the new card's id
)

func (t Type) known() bool { return t >= TypeChallenge && t <= TypeEnrolled }

func (t Type) String() string {
	switch t {
	case TypeChallenge:
		return "challenge"
	case TypePresentation:
		return "presentation"
	case TypeVerdict:
		return "verdict"
	case TypeReceipt:
		return "receipt"
	case TypeEnrollment:
		return "enrollment"
	case TypeEnrolled:
		return "enrolled"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// Frame errors. ReadFrame returns io.EOF only when the stream ends cleanly
// before a frame starts.
var (
	ErrBadMagic      = errors.New("exchange: not a lintel frame (bad magic byte)")
	ErrBadVersion    = errors.New("exchange: unsupported version")
	ErrUnknownType   = errors.New("exchange: unknown frame type")
	ErrTruncated     = errors.New("exchange: truncated")
	ErrFrameTooLarge = errors.New("exchange: frame too large")
)

// Frame is one framed message: its type and its encoded payload.
type Frame struct {
	Type    Type
	Payload []byte
}

// AppendFrame appends the wire form of f to b.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	if !f.Type.known() {
		return b, fmt.Errorf("%w %d", ErrUnknownType, byte(f.Type))
	}
	if len(f.Payload) > MaxPayload {
		return b, fmt.Errorf("%w: payload of %d bytes, at most %d", ErrFrameTooLarge, len(f.Payload), MaxPayload)
	}
	b = append(b, Magic, FrameVersion, byte(f.Type))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.Payload)))
	return append(b, f.Payload...), nil
}

// WriteFrame writes f in a single Write, so a datagram-like transport (a GATT
// write, one TCP segment) carries one whole frame.
func WriteFrame(w io.Writer, f Frame) error {
	b, err := AppendFrame(make([]byte, 0, HeaderSize+len(f.Payload)), f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadFrame reads one frame. It checks the header before allocating, so it
// never allocates more than MaxPayload bytes whatever the peer sends.
func ReadFrame(r io.Reader) (Frame, error) {
	var h [HeaderSize]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return Frame{}, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("%w: header ends after %d of %d bytes", ErrTruncated, n, HeaderSize)
		}
		return Frame{}, err
	}
	if h[0] != Magic {
		return Frame{}, fmt.Errorf("%w: 0x%02x", ErrBadMagic, h[0])
	}
	if h[1] != FrameVersion {
		return Frame{}, fmt.Errorf("%w: frame version %d, this node speaks %d", ErrBadVersion, h[1], FrameVersion)
	}
	t := Type(h[2])
	if !t.known() {
		return Frame{}, fmt.Errorf("%w %d", ErrUnknownType, h[2])
	}
	n := int(binary.BigEndian.Uint16(h[3:]))
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("%w: payload of %d bytes, at most %d", ErrFrameTooLarge, n, MaxPayload)
	}
	p := make([]byte, n)
	if got, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("%w: payload ends after %d of %d bytes", ErrTruncated, got, n)
		}
		return Frame{}, err
	}
	return Frame{Type: t, Payload: p}, nil
}
