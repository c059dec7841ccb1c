package voucher

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// keyIDLen is the length of a key id in bytes (it is written in hex):
// 64 bits tell a handful of issuers apart, and Verify still checks the key.
const keyIDLen = 8

// maxKeyFileSize bounds what the key loaders read: a key file is ~100 bytes.
const maxKeyFileSize = 4096

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

// GenerateKey makes a new issuer key from the system's random source.
func GenerateKey() (PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generate voucher key: %w", err)
	}
	return PrivateKey{key: key}, nil
}

// NewKeyFromSeed makes the key of a 32-byte seed (RFC 8032); for tests and
// keys derived from another secret.
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

// ErrKeyFileOpen is returned (wrapped) by LoadPrivateKey for a key file that
// the group or others may read or write.
var ErrKeyFileOpen = errors.New("voucher private key file is open to other users")

// LoadPrivateKey reads a private key file. It refuses one that the group or
// others may read or write: whoever reads the file can mint credits.
func LoadPrivateKey(path string) (PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return PrivateKey{}, err
	}
	defer f.Close()
	// Stat the open file, not the path, so the check is on what is read.
	st, err := f.Stat()
	if err != nil {
		return PrivateKey{}, err
	}
	if !st.Mode().IsRegular() {
		return PrivateKey{}, fmt.Errorf("%s is not a regular file", path)
	}
	// Windows has no such mode bits; there the file's ACL is what counts.
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return PrivateKey{}, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrKeyFileOpen, path, perm, path)
	}
	text, err := readLimited(f, path)
	if err != nil {
		return PrivateKey{}, err
	}
	k, err := ParsePrivateKey(text)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}

// LoadPublicKey reads an issuer public key file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	text, err := readLimited(f, path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return pub, nil
}

func readLimited(r io.Reader, path string) ([]byte, error) {
	text, err := io.ReadAll(io.LimitReader(r, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(text) > maxKeyFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes; it is not a voucher key file", path, maxKeyFileSize)
	}
	return text, nil
}

// WriteKeyFiles writes the private key to path (mode 0600) and its public key
// to path+".pub" (mode 0644). Unless force is set it refuses, before writing
// anything, when either file exists; the error wraps fs.ErrExist.
func WriteKeyFiles(path string, k PrivateKey, force bool) error {
	if k.key == nil {
		return errors.New("no key to write")
	}
	pubPath := path + ".pub"
	if !force {
		for _, p := range []string{path, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s: %w", p, fs.ErrExist)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := writeFile(path, MarshalPrivateKey(k), 0o600, force); err != nil {
		return err
	}
	if err := writeFile(pubPath, MarshalPublicKey(k.Public()), 0o644, force); err != nil {
		// Leave no private key without its public half.
		os.Remove(path)
		return err
	}
	return nil
}

// writeFile writes data to path with mode perm. Without force it creates the
// file exclusively, so a file that appeared meanwhile is not overwritten;
// with force it replaces the file by renaming a complete temporary file over
// it, so the old file's mode does not carry over and a crash leaves either.
func writeFile(path string, data []byte, perm fs.FileMode, force bool) (err error) {
	var f *os.File
	if force {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	}
	if err != nil {
		return err
	}
	name := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	// Chmod the open file: the umask may have cleared bits of a .pub, and
	// CreateTemp always makes 0600.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if force {
		return os.Rename(name, path)
	}
	return nil
}
