// Package wallet is the phone's side of Lintel: a software wallet that
// activates virtual access cards, holds their device keys and confirms
// deletions (SPEC 7). The later reader work reuses Card.Sign and
// Wallet.Delete for the BLE and reader-link exchange (SPEC 6.1).
//
// A Wallet lives in one JSON file (see DESIGN.md). It is not safe for
// concurrent use, and two processes must not use the same file at once.
package wallet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultPath is the wallet file used when none is given.
const DefaultPath = "wallet.json"

// HTTPTimeout bounds every request the wallet makes to a node.
const HTTPTimeout = 10 * time.Second

// fileVersion is the version of the wallet file format.
const fileVersion = 1

// maxFileSize bounds what Open reads.
const maxFileSize = 16 << 20

// Card is one virtual access card held by the wallet. Its JSON form is what
// `lintel wallet list` prints: it never contains the private key.
type Card struct {
	CardID       string `json:"card_id"`
	SiteID       string `json:"site_id"`
	Site         string `json:"site"`
	Kind         string `json:"kind"`
	ReaderConfig string `json:"reader_config"`
	PrivateID    string `json:"private_id"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	// Status is the card's status as the node last told it.
	Status string `json:"status"`
	// NodeURL is the node the card was activated at (scheme://host[:port]).
	NodeURL string `json:"node_url"`
	// CA is the fingerprint of the cluster CA the activation link named
	// ("sha256:…"): the wallet trusts that node's HTTPS certificate only
	// when it is issued by that CA. Empty for a plain HTTP node on the same
	// machine, or one with the site's own certificate (system roots).
	CA string `json:"ca,omitempty"`
	// Cluster is the id of the cluster that issued the card.
	Cluster string `json:"cluster,omitempty"`
	// VerdictKey is that cluster's public verdict key (Ed25519): a reader's
	// delete instruction is carried out only when signed with it.
	VerdictKey  []byte    `json:"verdict_key,omitempty"`
	ActivatedAt time.Time `json:"activated_at"`
	// Deleted is set once the card's key is destroyed; the entry stays only
	// until the node has the deletion receipt.
	Deleted   bool       `json:"deleted,omitempty"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`

	key     *ecdsa.PrivateKey
	receipt []byte // signed deletion receipt not yet confirmed by the node
}

// Sign signs msg with the card's device key: an ECDSA P-256 signature in
// ASN.1 form over SHA-256(msg), as the node verifies it (state.VerifyDevice).
func (c *Card) Sign(msg []byte) ([]byte, error) {
	if c.key == nil {
		return nil, fmt.Errorf("card %s is deleted from this wallet: its key is gone", c.CardID)
	}
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, c.key, sum[:])
}

// PublicKeyDER is the card's device public key in PKIX DER, as bound on the
// node; nil for a deleted card.
func (c *Card) PublicKeyDER() []byte {
	if c.key == nil {
		return nil
	}
	der, err := x509.MarshalPKIXPublicKey(&c.key.PublicKey)
	if err != nil {
		return nil
	}
	return der
}

// Receipt is the signed deletion receipt of a deleted card that the node has
// not confirmed yet, or nil.
func (c *Card) Receipt() []byte { return c.receipt }

// pending is an activation whose outcome is not known: the request may have
// reached the node and bound the key. Running the same activation again
// reuses the key and the idempotency key, so the node answers the first
// outcome instead of link_used.
type pending struct {
	URL            string    `json:"url"`
	PrivateKey     string    `json:"private_key"`
	IdempotencyKey string    `json:"idempotency_key"`
	StartedAt      time.Time `json:"started_at"`

	key *ecdsa.PrivateKey
}

// fileCard is a card as stored: the card plus its secrets.
type fileCard struct {
	Card
	PrivateKey string `json:"private_key,omitempty"` // base64 PKCS#8 DER
	Receipt    string `json:"receipt,omitempty"`     // base64 ASN.1 signature
}

type file struct {
	Version int        `json:"version"`
	Cards   []fileCard `json:"cards"`
	Pending []pending  `json:"pending,omitempty"`
}

// Wallet is the state of one phone, backed by a file.
type Wallet struct {
	// HTTP is the client used to talk to nodes; Open sets one with
	// HTTPTimeout.
	HTTP *http.Client

	path    string
	mu      sync.Mutex
	pinned  map[string]*http.Client // by CA fingerprint and host
	cards   []*Card
	pending []*pending
	now     func() time.Time
}

// Open loads the wallet at path. A missing file is an empty wallet (the file
// is created by the first Save). A file that group or others may read or
// write is refused: it holds private keys.
func Open(path string) (*Wallet, error) {
	if path == "" {
		return nil, errors.New("no wallet file given")
	}
	w := &Wallet{HTTP: &http.Client{Timeout: HTTPTimeout}, path: path, now: time.Now}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wallet file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("wallet file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("wallet file %s has mode %04o: it holds private keys and must not be open to group or others; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("wallet file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("wallet file %s is over %d MiB; it is not a wallet", path, maxFileSize>>20)
	}
	var doc file
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("wallet file %s is not a wallet: %v", path, err)
	}
	if doc.Version != fileVersion {
		return nil, fmt.Errorf("wallet file %s has version %d; this build reads version %d", path, doc.Version, fileVersion)
	}
	seen := map[string]bool{}
	for i, fc := range doc.Cards {
		c := fc.Card
		if c.CardID == "" || seen[c.CardID] {
			return nil, fmt.Errorf("wallet file %s: card %d has no card_id or a duplicate one", path, i+1)
		}
		seen[c.CardID] = true
		if !c.Deleted {
			if c.key, err = parseKey(fc.PrivateKey); err != nil {
				return nil, fmt.Errorf("wallet file %s: card %s: private_key: %v", path, c.CardID, err)
			}
		}
		if fc.Receipt != "" {
			if c.receipt, err = base64.StdEncoding.DecodeString(fc.Receipt); err != nil {
				return nil, fmt.Errorf("wallet file %s: card %s: receipt: %v", path, c.CardID, err)
			}
		}
		w.cards = append(w.cards, &c)
	}
	for i := range doc.Pending {
		p := doc.Pending[i]
		if p.key, err = parseKey(p.PrivateKey); err != nil {
			return nil, fmt.Errorf("wallet file %s: pending activation %d: private_key: %v", path, i+1, err)
		}
		w.pending = append(w.pending, &p)
	}
	return w, nil
}

// Path is the wallet's file.
func (w *Wallet) Path() string { return w.path }

// Cards returns the cards held, in activation order. Deleted cards waiting
// for their receipt to reach the node are not held and not returned.
func (w *Wallet) Cards() []*Card {
	var out []*Card
	for _, c := range w.cards {
		if !c.Deleted {
			out = append(out, c)
		}
	}
	return out
}

// Card returns the held card with the given id.
func (w *Wallet) Card(id string) (*Card, bool) {
	for _, c := range w.cards {
		if c.CardID == id && !c.Deleted {
			return c, true
		}
	}
	return nil, false
}

// Delete carries out a delete instruction for a held card: it signs the
// deletion receipt, destroys the card's key and keeps the receipt until
// ReceiptDelivered. It saves the wallet before returning the receipt, so
// a receipt is only ever sent for a key that is gone from the file.
func (w *Wallet) Delete(id string) ([]byte, error) {
	c := w.find(id)
	if c == nil {
		return nil, fmt.Errorf("card %s is not in this wallet", id)
	}
	if c.Deleted {
		if c.receipt == nil {
			return nil, fmt.Errorf("card %s is deleted and its receipt was delivered", id)
		}
		return c.receipt, nil
	}
	sig, err := c.Sign(DeletionReceiptMessage(id))
	if err != nil {
		return nil, err
	}
	at := w.now().UTC()
	key := c.key
	c.Deleted, c.DeletedAt, c.key, c.receipt = true, &at, nil, sig
	if err := w.Save(); err != nil {
		// The file still holds the card: so does the wallet.
		c.Deleted, c.DeletedAt, c.key, c.receipt = false, nil, key, nil
		return nil, err
	}
	return sig, nil
}

// ReceiptDelivered forgets a deleted card once the node has its receipt (or
// no longer needs one).
func (w *Wallet) ReceiptDelivered(id string) {
	w.remove(id)
}

func (w *Wallet) find(id string) *Card {
	for _, c := range w.cards {
		if c.CardID == id {
			return c
		}
	}
	return nil
}

func (w *Wallet) remove(id string) {
	for i, c := range w.cards {
		if c.CardID == id {
			w.cards = append(w.cards[:i], w.cards[i+1:]...)
			return
		}
	}
}

// Save writes the wallet file atomically with mode 0600: a complete
// temporary file in the same directory is renamed over the old one.
func (w *Wallet) Save() (err error) {
	doc := file{Version: fileVersion, Cards: []fileCard{}}
	for _, c := range w.cards {
		fc := fileCard{Card: *c}
		if c.key != nil {
			if fc.PrivateKey, err = marshalKey(c.key); err != nil {
				return fmt.Errorf("card %s: %v", c.CardID, err)
			}
		}
		if c.receipt != nil {
			fc.Receipt = base64.StdEncoding.EncodeToString(c.receipt)
		}
		doc.Cards = append(doc.Cards, fc)
	}
	for _, p := range w.pending {
		doc.Pending = append(doc.Pending, *p)
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')

	dir := filepath.Dir(w.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(w.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save wallet: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("save wallet %s: %w", w.path, err)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
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
	if err = os.Rename(tmp, w.path); err != nil {
		return err
	}
	// Make the rename durable; a directory that cannot be synced is not an
	// error worth losing the save over.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func marshalKey(k *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

func parseKey(s string) (*ecdsa.PrivateKey, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return ek, nil
}
