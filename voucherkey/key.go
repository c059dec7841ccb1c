// Package voucherkey makes credit-issuer keys and reads and writes their key
// files. It holds what package voucher must not: randomness and file I/O,
// which have no place in the replicated state machine. See DESIGN.md; the
// file formats are in consensus/state/voucher/FORMAT.md.
package voucherkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"lintel/consensus/state/voucher"
)

// maxKeyFileSize bounds what the key loaders read: a key file is ~100 bytes.
const maxKeyFileSize = 4096

// GenerateKey makes a new issuer key from the system's random source.
func GenerateKey() (voucher.PrivateKey, error) {
	// What ed25519.GenerateKey does: a random seed, expanded per RFC 8032.
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand.Reader, seed); err != nil {
		return voucher.PrivateKey{}, fmt.Errorf("generate voucher key: %w", err)
	}
	return voucher.NewKeyFromSeed(seed)
}

// ErrKeyFileOpen is returned (wrapped) by LoadPrivateKey for a key file that
// the group or others may read or write.
var ErrKeyFileOpen = errors.New("voucher private key file is open to other users")

// LoadPrivateKey reads a private key file. It refuses one that the group or
// others may read or write: whoever reads the file can mint credits.
func LoadPrivateKey(path string) (voucher.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return voucher.PrivateKey{}, err
	}
	defer f.Close()
	// Stat the open file, not the path, so the check is on what is read.
	st, err := f.Stat()
	if err != nil {
		return voucher.PrivateKey{}, err
	}
	if !st.Mode().IsRegular() {
		return voucher.PrivateKey{}, fmt.Errorf("%s is not a regular file", path)
	}
	// Windows has no such mode bits; there the file's ACL is what counts.
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return voucher.PrivateKey{}, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrKeyFileOpen, path, perm, path)
	}
	text, err := readLimited(f, path)
	if err != nil {
		return voucher.PrivateKey{}, err
	}
	k, err := voucher.ParsePrivateKey(text)
	if err != nil {
		return voucher.PrivateKey{}, fmt.Errorf("%s: %v", path, err)
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
	pub, err := voucher.ParsePublicKey(text)
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
func WriteKeyFiles(path string, k voucher.PrivateKey, force bool) error {
	if k.Public() == nil {
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
	if err := writeFile(path, voucher.MarshalPrivateKey(k), 0o600, force); err != nil {
		return err
	}
	if err := writeFile(pubPath, voucher.MarshalPublicKey(k.Public()), 0o644, force); err != nil {
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
