package voucher

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// keyIDLen is the length of a key id in bytes (it is written in hex):
// 64 bits tell a handful of issuers apart, and Verify still checks the key.
const keyIDLen = 8

var (
	privateFormat = format{magic: "lintel-voucher-key", what: "voucher private key file", secret: true}
	publicFormat  = format{magic: "lintel-voucher-issuer", what: "voucher issuer public key file"}
)

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:keyIDLen])
}

// PrivateKey is an issuer's signing key. Its zero value is no key.
// Printing it with fmt shows only its key id.
type PrivateKey struct {
	key ed25519.PrivateKey
}

// NewKeyFromSeed makes the key of a 32-byte seed (RFC 8032). New random keys
// come from voucherkey.GenerateKey, outside the state tree; this package
// reads no random source.
func NewKeyFromSeed(seed []byte) (PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("a voucher key seed is %d bytes, not %d", ed25519.SeedSize, len(seed))
	}
	return PrivateKey{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public returns the public key that verifies this key's vouchers, or nil
// for the zero PrivateKey.
func (k PrivateKey) Public() ed25519.PublicKey {
	if k.key == nil {
		return nil
	}
	return k.key.Public().(ed25519.PublicKey)
}

// KeyID returns the id of the public key.
func (k PrivateKey) KeyID() string {
	if k.key == nil {
		return ""
	}
	return KeyID(k.Public())
}

// Format keeps the seed out of logs and error messages whatever the verb.
func (k PrivateKey) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "voucher.PrivateKey(%s)", k.KeyID())
}

// MarshalPrivateKey returns the private key file text:
//
//	lintel-voucher-key 1
//	seed: <base64 of the 32-byte seed>
//	key-id: <key id>
//
// It panics on the zero PrivateKey.
func MarshalPrivateKey(k PrivateKey) []byte {
	if k.key == nil {
		panic("voucher.MarshalPrivateKey: zero PrivateKey")
	}
	return fmt.Appendf(nil, "%s %s\nseed: %s\nkey-id: %s\n",
		privateFormat.magic, formatVersion, base64.StdEncoding.EncodeToString(k.key.Seed()), k.KeyID())
}

// ParsePrivateKey reads a private key file text. Its errors never quote the
// text, which holds the seed.
func ParsePrivateKey(text []byte) (PrivateKey, error) {
	fields, err := readDocument(text, privateFormat)
	if err != nil {
		return PrivateKey{}, err
	}
	set, err := collect(fields, privateFormat, "seed", "key-id")
	if err != nil {
		return PrivateKey{}, err
	}
	f := set["seed"]
	seed, err := base64.StdEncoding.Strict().DecodeString(f.value)
	if err != nil || len(seed) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("line %d: seed is not %d bytes of standard base64", f.line, ed25519.SeedSize)
	}
	k := PrivateKey{key: ed25519.NewKeyFromSeed(seed)}
	if err := checkIDLine(set["key-id"], k.KeyID()); err != nil {
		return PrivateKey{}, err
	}
	return k, nil
}

// MarshalPublicKey returns the public key file text (FILE.pub):
//
//	lintel-voucher-issuer 1
//	public-key: <base64 of the 32-byte public key>
//	key-id: <key id>
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	return fmt.Appendf(nil, "%s %s\npublic-key: %s\nkey-id: %s\n",
		publicFormat.magic, formatVersion, base64.StdEncoding.EncodeToString(pub), KeyID(pub))
}

// ParsePublicKey reads a public key file text.
func ParsePublicKey(text []byte) (ed25519.PublicKey, error) {
	fields, err := readDocument(text, publicFormat)
	if err != nil {
		return nil, err
	}
	set, err := collect(fields, publicFormat, "public-key", "key-id")
	if err != nil {
		return nil, err
	}
	f := set["public-key"]
	pub, err := base64.StdEncoding.Strict().DecodeString(f.value)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("line %d: public-key %s is not %d bytes of standard base64", f.line, quote(f.value), ed25519.PublicKeySize)
	}
	if err := checkIDLine(set["key-id"], KeyID(pub)); err != nil {
		return nil, err
	}
	return ed25519.PublicKey(pub), nil
}

// checkIDLine checks the key-id line people read against the key: a
// mismatch means the file was edited or pieced together from two keys.
func checkIDLine(f field, want string) error {
	if f.value != want {
		return fmt.Errorf("line %d: key-id %s does not match the key (its id is %s)", f.line, quote(f.value), want)
	}
	return nil
}
