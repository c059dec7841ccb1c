package decide

import (
	"crypto/ecdsa"
	"sync"

	"lintel/reader/exchange"
)

// DefaultKeyCacheSize bounds a KeyCache made with size ≤ 0.
const DefaultKeyCacheSize = 65536

// KeyCache keeps parsed device public keys by card id, so a presentation
// does not re-parse PKIX DER (exchange.ParseDeviceKey). An entry also holds
// the key bytes it was parsed from: a re-issued card's new key replaces the
// old one. It is bounded (when full, an arbitrary entry is evicted) and safe
// for concurrent use. The nil *KeyCache is valid and caches nothing.
type KeyCache struct {
	mu   sync.RWMutex
	max  int
	keys map[string]cachedKey
}

type cachedKey struct {
	der string // a copy: the cache keeps no reference into the state
	pub *ecdsa.PublicKey
}

// NewKeyCache returns a cache of at most size keys (DefaultKeyCacheSize if size ≤ 0).
func NewKeyCache(size int) *KeyCache {
	if size <= 0 {
		size = DefaultKeyCacheSize
	}
	return &KeyCache{max: size, keys: make(map[string]cachedKey)}
}

// Len is the number of cached keys.
func (kc *KeyCache) Len() int {
	if kc == nil {
		return 0
	}
	kc.mu.RLock()
	defer kc.mu.RUnlock()
	return len(kc.keys)
}

// Get returns the P-256 key in der for cardID, or nil if der is not one.
func (kc *KeyCache) Get(cardID string, der []byte) *ecdsa.PublicKey {
	if kc == nil {
		return parseKey(der)
	}
	kc.mu.RLock()
	e, ok := kc.keys[cardID]
	kc.mu.RUnlock()
	if ok && e.der == string(der) {
		return e.pub
	}
	pub := parseKey(der)
	if pub == nil {
		return nil
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if _, present := kc.keys[cardID]; !present && len(kc.keys) >= kc.max {
		for id := range kc.keys { // map order: an arbitrary victim
			delete(kc.keys, id)
			break
		}
	}
	kc.keys[cardID] = cachedKey{der: string(der), pub: pub}
	return pub
}

// parseKey is exchange's key check: PKIX DER holding an ECDSA P-256 key.
func parseKey(der []byte) *ecdsa.PublicKey {
	k, err := exchange.ParseDeviceKey(der)
	if err != nil {
		return nil
	}
	return k
}
