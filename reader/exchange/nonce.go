package exchange

import (
	"container/list"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

// NonceSource makes challenge nonces. Tests pass a fixed one.
type NonceSource interface {
	Nonce() (Nonce, error)
}

// RandomNonces draws nonces from crypto/rand.
type RandomNonces struct{}

// Nonce returns 16 fresh random bytes.
func (RandomNonces) Nonce() (Nonce, error) {
	var n Nonce
	if _, err := rand.Read(n[:]); err != nil {
		return Nonce{}, fmt.Errorf("exchange: reading random nonce: %w", err)
	}
	return n, nil
}

// Nonce errors. Both ErrNonceExpired and ErrNonceMismatch are replays for the
// decision engine (ReasonFor maps them to ReasonReplay).
var (
	ErrReplay         = errors.New("exchange: nonce not outstanding (replayed, already used or never issued)")
	ErrNonceExpired   = fmt.Errorf("%w: nonce expired", ErrReplay)
	ErrDuplicateNonce = errors.New("exchange: nonce issued twice (broken random source?)")
)

// NonceBook remembers the nonces a reader has issued and accepts each at most
// once, within ttl of its issue. It holds at most max outstanding nonces and
// forgets the oldest first, so a flood of challenges costs bounded memory and
// only invalidates the flooder's oldest challenges. Safe for concurrent use.
type NonceBook struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	order *list.List              // of *issued, oldest first
	byKey map[Nonce]*list.Element // outstanding nonces
}

type issued struct {
	nonce Nonce
	at    time.Time
}

// NewNonceBook makes a book; ttl and max must be positive.
func NewNonceBook(ttl time.Duration, max int) *NonceBook {
	if ttl <= 0 || max <= 0 {
		panic("exchange: NewNonceBook needs a positive ttl and max")
	}
	return &NonceBook{ttl: ttl, max: max, order: list.New(), byKey: make(map[Nonce]*list.Element)}
}

// Issue records n as handed out at now.
func (b *NonceBook) Issue(n Nonce, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	if _, dup := b.byKey[n]; dup {
		return ErrDuplicateNonce
	}
	for b.order.Len() >= b.max {
		b.remove(b.order.Front())
	}
	b.byKey[n] = b.order.PushBack(&issued{nonce: n, at: now})
	return nil
}

// Use accepts n once if it is outstanding and not older than the ttl at now;
// afterwards n is refused with ErrReplay.
func (b *NonceBook) Use(n Nonce, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.byKey[n]
	if !ok {
		return ErrReplay
	}
	b.remove(e) // used or expired: either way never again
	if now.Sub(e.Value.(*issued).at) > b.ttl {
		return ErrNonceExpired
	}
	return nil
}

// Outstanding is the number of nonces remembered.
func (b *NonceBook) Outstanding() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.order.Len()
}

// expire drops expired nonces from the front. Issue times are normally in
// order; if the clock steps back, Use still checks each nonce's own age.
func (b *NonceBook) expire(now time.Time) {
	for e := b.order.Front(); e != nil && now.Sub(e.Value.(*issued).at) > b.ttl; e = b.order.Front() {
		b.remove(e)
	}
}

func (b *NonceBook) remove(e *list.Element) {
	delete(b.byKey, e.Value.(*issued).nonce)
	b.order.Remove(e)
}
