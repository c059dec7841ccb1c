package exchange

import (
	"errors"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func nonceN(i int) Nonce { return Nonce{byte(i), byte(i >> 8), byte(i >> 16), 0xAA} }

func TestNonceBookOnce(t *testing.T) {
	b := NewNonceBook(30*time.Second, 10)
	n := nonceN(1)
	if err := b.Use(n, t0); !errors.Is(err, ErrReplay) {
		t.Fatalf("never issued: %v", err)
	}
	if err := b.Issue(n, t0); err != nil {
		t.Fatal(err)
	}
	if err := b.Issue(n, t0); !errors.Is(err, ErrDuplicateNonce) {
		t.Fatalf("issued twice: %v", err)
	}
	if err := b.Use(n, t0.Add(time.Second)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := b.Use(n, t0.Add(2*time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if b.Outstanding() != 0 {
		t.Fatalf("%d outstanding", b.Outstanding())
	}
}

func TestNonceBookTTL(t *testing.T) {
	b := NewNonceBook(30*time.Second, 10)
	_ = b.Issue(nonceN(1), t0)
	_ = b.Issue(nonceN(2), t0)
	if err := b.Use(nonceN(1), t0.Add(30*time.Second)); err != nil {
		t.Fatalf("at exactly the ttl: %v", err)
	}
	err := b.Use(nonceN(2), t0.Add(30*time.Second+time.Nanosecond))
	if !errors.Is(err, ErrNonceExpired) || !errors.Is(err, ErrReplay) {
		t.Fatalf("after the ttl: %v", err)
	}
	if err := b.Use(nonceN(2), t0); !errors.Is(err, ErrReplay) {
		t.Fatalf("an expired nonce stays refused: %v", err)
	}
	// Expired nonces are dropped when new ones are issued.
	for i := range 5 {
		_ = b.Issue(nonceN(10+i), t0)
	}
	_ = b.Issue(nonceN(99), t0.Add(time.Minute))
	if b.Outstanding() != 1 {
		t.Fatalf("%d outstanding after expiry", b.Outstanding())
	}
}

func TestNonceBookBounded(t *testing.T) {
	const max = 100
	b := NewNonceBook(time.Hour, max)
	for i := range 10 * max {
		if err := b.Issue(nonceN(i), t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if b.Outstanding() > max {
			t.Fatalf("%d outstanding", b.Outstanding())
		}
	}
	if err := b.Use(nonceN(10*max-max-1), t0.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("evicted nonce: %v", err)
	}
	if err := b.Use(nonceN(10*max-max), t0.Add(time.Second)); err != nil {
		t.Fatalf("oldest kept nonce: %v", err)
	}
	if len(b.byKey) != b.order.Len() {
		t.Fatalf("map %d, list %d", len(b.byKey), b.order.Len())
	}
}

func TestNonceBookConcurrent(t *testing.T) {
	b := NewNonceBook(time.Minute, 1000)
	n := nonceN(7)
	_ = b.Issue(n, t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Go(func() {
			if b.Use(n, t0) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("nonce accepted %d times", ok)
	}
}

func TestRandomNonces(t *testing.T) {
	a, err := RandomNonces{}.Nonce()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomNonces{}.Nonce()
	if a == b || a == (Nonce{}) {
		t.Fatalf("%x %x", a, b)
	}
	var _ NonceSource = RandomNonces{}
}
