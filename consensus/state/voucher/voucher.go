// Package voucher reads, writes, signs and verifies credit vouchers: small
// signed texts through which credits enter the ledger (SPEC 5.4, 5.7).
//
// The package uses no clock, no randomness and no I/O: the replicated state
// machine calls Parse and Verify, and every node must reach the same answer.
// Generating keys and reading and writing key files is package voucherkey's
// job. The formats are described in FORMAT.md.
package voucher

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Limits of a voucher.
const (
	MaxSize    = 4096          // bytes of voucher text Parse reads
	MaxCredits = 1_000_000_000 // credits one voucher may carry
	MaxIDLen   = 64            // bytes of a voucher id or account id
)

// TimeLayout is the only form of the issue time: RFC 3339, UTC, whole seconds.
// One form only, so that a voucher has one canonical text.
const TimeLayout = "2006-01-02T15:04:05Z"

const voucherMagic = "lintel-voucher"

var voucherFormat = format{magic: voucherMagic, what: "voucher"}

// The field names, in the order of the canonical text.
var voucherFields = []string{"issuer", "id", "account", "credits", "issued", "signature"}

// Errors a voucher is refused with; test them with errors.Is. Every error of
// Parse wraps ErrMalformed.
var (
	ErrMalformed     = errors.New("malformed voucher")
	ErrUnknownIssuer = errors.New("voucher issuer is not trusted")
	ErrBadSignature  = errors.New("voucher signature is not valid")
)

// Voucher is a signed grant of credits to one account.
type Voucher struct {
	Issuer    string    `json:"issuer"`  // key id of the signing key (KeyID)
	ID        string    `json:"id"`      // loads at most once, cluster-wide
	Account   string    `json:"account"` // the account credited
	Credits   int64     `json:"credits"`
	Issued    time.Time `json:"issued"` // UTC, whole seconds
	Signature []byte    `json:"signature"`
}

// Issue signs a voucher with priv and returns it with its canonical text.
// The issue time is taken in UTC and cut to the whole second.
//
// Issue panics if priv is the zero PrivateKey or a field is invalid: check
// values from users first with CheckID, CheckCredits and CheckIssued.
func Issue(priv PrivateKey, accountID, voucherID string, credits int64, issued time.Time) (Voucher, []byte) {
	if len(priv.key) != ed25519.PrivateKeySize {
		panic("voucher.Issue: zero PrivateKey")
	}
	v := Voucher{
		Issuer:  priv.KeyID(),
		ID:      voucherID,
		Account: accountID,
		Credits: credits,
		Issued:  issued.UTC().Truncate(time.Second),
	}
	if err := v.checkFields(); err != nil {
		panic("voucher.Issue: " + err.Error())
	}
	v.Signature = ed25519.Sign(priv.key, v.SignedBytes())
	return v, v.Marshal()
}

// SignedBytes returns what the signature covers: the canonical text up to and
// including the issued line. The first line keeps these bytes from meaning
// anything to another format signed with the same key.
func (v Voucher) SignedBytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s\n", voucherMagic, formatVersion)
	fmt.Fprintf(&b, "issuer: %s\n", v.Issuer)
	fmt.Fprintf(&b, "id: %s\n", v.ID)
	fmt.Fprintf(&b, "account: %s\n", v.Account)
	fmt.Fprintf(&b, "credits: %d\n", v.Credits)
	fmt.Fprintf(&b, "issued: %s\n", v.Issued.UTC().Format(TimeLayout))
	return b.Bytes()
}

// Marshal returns the canonical text of the voucher.
func (v Voucher) Marshal() []byte {
	b := v.SignedBytes()
	b = append(b, "signature: "...)
	b = append(b, base64.StdEncoding.EncodeToString(v.Signature)...)
	return append(b, '\n')
}

// Parse reads a voucher text. It checks the form of every field but not the
// signature: that is Verify's job.
//
// Layout is forgiven (CRLF, blank lines, spaces around lines, keys and
// values, fields in any order); content is not: every field once, each in its
// one canonical form.
func Parse(text []byte) (Voucher, error) {
	var v Voucher
	if len(text) > MaxSize {
		return v, fmt.Errorf("%w: the text is %d bytes; a voucher is at most %d", ErrMalformed, len(text), MaxSize)
	}
	fields, err := readDocument(text, voucherFormat)
	if err != nil {
		return v, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	set, err := collect(fields, voucherFormat, voucherFields...)
	if err != nil {
		return v, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, name := range voucherFields {
		f := set[name]
		var err error
		switch name {
		case "issuer":
			v.Issuer, err = f.value, checkKeyID(f.value)
		case "id":
			v.ID, err = f.value, CheckID(f.value)
		case "account":
			v.Account, err = f.value, CheckID(f.value)
		case "credits":
			v.Credits, err = parseCredits(f.value)
		case "issued":
			v.Issued, err = parseIssued(f.value)
		case "signature":
			v.Signature, err = parseSignature(f.value)
		}
		if err != nil {
			return Voucher{}, fmt.Errorf("%w: line %d: %s %s %v", ErrMalformed, f.line, name, quote(f.value), err)
		}
	}
	return v, nil
}

// Validate checks every field of a voucher built by other means than Parse
// (decoded from JSON, say). It does not check the signature.
func (v Voucher) Validate() error {
	if err := v.checkFields(); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(v.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes; an Ed25519 signature is %d", ErrMalformed, len(v.Signature), ed25519.SignatureSize)
	}
	return nil
}

// checkFields checks the signed fields.
func (v Voucher) checkFields() error {
	if err := checkKeyID(v.Issuer); err != nil {
		return fmt.Errorf("issuer %s %v", quote(v.Issuer), err)
	}
	if err := CheckID(v.ID); err != nil {
		return fmt.Errorf("id %s %v", quote(v.ID), err)
	}
	if err := CheckID(v.Account); err != nil {
		return fmt.Errorf("account %s %v", quote(v.Account), err)
	}
	if err := CheckCredits(v.Credits); err != nil {
		return fmt.Errorf("credits %d %v", v.Credits, err)
	}
	if err := CheckIssued(v.Issued); err != nil {
		return fmt.Errorf("issued %s %v", v.Issued.UTC().Format(time.RFC3339Nano), err)
	}
	return nil
}

// Verify checks that the voucher is well formed and signed by one of the
// trusted issuer keys. It returns an error wrapping ErrMalformed,
// ErrUnknownIssuer or ErrBadSignature.
//
// Verify is deterministic: the state machine calls it when a voucher is loaded.
// Keys of the wrong length in trusted are skipped.
func (v Voucher) Verify(trusted []ed25519.PublicKey) error {
	if err := v.Validate(); err != nil {
		return err
	}
	known := false
	msg := v.SignedBytes()
	for _, pub := range trusted {
		// ed25519.Verify panics on a key of the wrong length; a panic here
		// would stop every node applying the log.
		if len(pub) != ed25519.PublicKeySize || KeyID(pub) != v.Issuer {
			continue
		}
		known = true
		if ed25519.Verify(pub, msg, v.Signature) {
			return nil
		}
		// Keep looking: the same key id twice (a key listed twice, or a
		// 64-bit collision) must not hide the right key.
	}
	if known {
		return fmt.Errorf("%w: voucher %s was changed after it was signed, or not signed by issuer %s", ErrBadSignature, v.ID, v.Issuer)
	}
	return fmt.Errorf("%w: no trusted issuer key has id %s", ErrUnknownIssuer, v.Issuer)
}

// CheckID checks a voucher id or an account id. The character set keeps ids
// safe to show, log and put in URLs and file names.
func CheckID(s string) error {
	if s == "" || len(s) > MaxIDLen {
		return fmt.Errorf("must be 1 to %d letters, digits, dots, dashes or underscores", MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("has %q; use only letters, digits, dots, dashes or underscores", rune(c))
		}
	}
	return nil
}

// CheckCredits checks the number of credits of a voucher.
func CheckCredits(n int64) error {
	if n < 1 || n > MaxCredits {
		return fmt.Errorf("must be a whole number from 1 to %d", MaxCredits)
	}
	return nil
}

// CheckIssued checks an issue time: whole seconds, in years 1 to 9999 (what
// RFC 3339 can write), and not the zero time (a forgotten field).
func CheckIssued(t time.Time) error {
	switch u := t.UTC(); {
	case t.IsZero():
		return errors.New("is the zero time; set the issue time")
	case u.Year() < 1 || u.Year() > 9999:
		return errors.New("must be in the years 1 to 9999")
	case u.Nanosecond() != 0:
		return errors.New("must be a whole second")
	}
	return nil
}

func checkKeyID(s string) error {
	if len(s) != 2*keyIDLen {
		return fmt.Errorf("is not a key id (%d lowercase hex digits)", 2*keyIDLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("is not a key id (%d lowercase hex digits)", 2*keyIDLen)
		}
	}
	return nil
}

// parseCredits reads credits in their one canonical form: decimal digits, no
// sign, no leading zero.
func parseCredits(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("is not a whole number written in plain digits")
	}
	return n, CheckCredits(n)
}

// parseIssued reads an issue time in its one canonical form, TimeLayout.
func parseIssued(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.UTC().Format(TimeLayout) != s {
		return time.Time{}, fmt.Errorf("is not an RFC 3339 UTC time to the second, like 2025-01-02T15:04:05Z")
	}
	t = t.UTC()
	return t, CheckIssued(t)
}

func parseSignature(s string) ([]byte, error) {
	// Strict: padding bits must be zero, so one signature has one text.
	sig, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("is not standard base64")
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("is %d bytes; an Ed25519 signature is %d", len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}
