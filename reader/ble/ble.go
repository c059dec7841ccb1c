// Package ble is the Bluetooth LE transport of the credential exchange
// (SPEC 6.1). The node's HCI adapter acts as a GATT peripheral with one
// service per BLE reader; the phone (the central) writes the reader-link
// frames of reader/exchange to a write characteristic and receives the
// reader's frames as notifications, so reader.Controller.Exchange runs
// unchanged over BLE. See DESIGN.md in this directory.
//
// Inside this package the identifier ble is github.com/go-ble/ble; only
// reader/ imports go-ble, and only Open touches a real adapter.
package ble

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-ble/ble"

	"lintel/reader"
	"lintel/reader/exchange"
)

// Exchanger runs one credential exchange over a byte stream with
// deadlines. *reader.Controller is one.
type Exchanger interface {
	Exchange(conn reader.Conn, readerID string) error
}

// Peripheral is what the transport needs from one adapter: Lintel's own
// thin interface over a go-ble device, so everything but Open is tested
// through a fake of it.
type Peripheral interface {
	// SetServices replaces the GATT services the adapter serves.
	SetServices(svcs []*ble.Service) error
	// Advertise advertises name and uuids until ctx is done, then returns
	// ctx's error; it returns earlier if advertising fails.
	Advertise(ctx context.Context, name string, uuids []ble.UUID) error
	// Close releases the adapter.
	Close() error
}

// The GATT layout (DESIGN.md). Every reader has its own service, with the
// two characteristics below; the characteristic UUIDs are the same in every
// service. Both were made with DeriveUUID from "lintel-ble\nphone-to-reader"
// and "lintel-ble\nreader-to-phone"; a test checks it.
const (
	// WriteCharUUID: phone → reader frames (write and write without response).
	WriteCharUUID = "468adc9a-4b52-8332-aef5-11be1ec43b0e"
	// NotifyCharUUID: reader → phone frames (notify).
	NotifyCharUUID = "4d0e25f3-640d-8b22-acb7-724f6b40c953"
)

var (
	writeChar  = ble.MustParse(WriteCharUUID)
	notifyChar = ble.MustParse(NotifyCharUUID)
)

// AdvertisedName is the local name in the advertisement (scan response).
const AdvertisedName = "Lintel"

// MaxPending bounds what a central may have written and the exchange not
// yet read; beyond it the central is disconnected and its exchange ends.
const MaxPending = 4 * exchange.MaxFrameSize

// ATT status codes the write characteristic answers with.
const (
	// StatusNotSubscribed: a write with no exchange in flight for this
	// central (not subscribed to the notify characteristic, or the
	// exchange of this subscription is over). 0xFD is the common profile
	// error "Client Characteristic Configuration Descriptor Improperly
	// Configured".
	StatusNotSubscribed = ble.ATTError(0xFD)
	// StatusOverflow: more than MaxPending bytes unread; the central is
	// disconnected.
	StatusOverflow = ble.ErrInsuffResources
)

// Advertising: with several readers on one adapter only one 128-bit
// service UUID fits in a legacy advertising packet, so they take turns.
var (
	advertiseSlot  = time.Second
	advertiseRetry = 5 * time.Second
)

// ErrClosed is returned by SetReaders after Close.
var ErrClosed = errors.New("ble: transport closed")

// DeriveUUID makes a 128-bit UUID from name: the first 16 bytes of
// SHA-256(name) with the version set to 8 (RFC 9562, custom) and the
// RFC 4122 variant, in the canonical text form.
func DeriveUUID(name string) string {
	sum := sha256.Sum256([]byte(name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ServiceUUID is the UUID of readerID's GATT service, which the node
// advertises: DeriveUUID("lintel-reader\n" + readerID). A phone that knows
// the reader id (printed on the reader, shown in the console) scans for it.
func ServiceUUID(readerID string) string {
	return DeriveUUID("lintel-reader\n" + readerID)
}

// Reader is a BLE reader of this node and the adapter that serves it.
type Reader struct {
	ID      string
	Adapter string // "hci0"
}

// Transport serves the node's BLE readers.
type Transport struct {
	ex   Exchanger
	open func(adapter string) (Peripheral, error)
	log  *slog.Logger

	mu       sync.Mutex // SetReaders and Close
	closed   bool
	adapters map[string]*adapter

	wg sync.WaitGroup // subscriptions being served and advertisers
}

// adapter is one open adapter and the readers it serves.
type adapter struct {
	name     string
	p        Peripheral
	services map[string]*service // by reader id
	stopAdv  context.CancelFunc
	advDone  chan struct{}
}

// New makes a transport that runs ex's exchanges over the adapters open
// returns (Open for real hardware). It serves nothing until SetReaders.
func New(ex Exchanger, open func(adapter string) (Peripheral, error), log *slog.Logger) *Transport {
	if open == nil {
		open = Open
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Transport{ex: ex, open: open, log: log, adapters: map[string]*adapter{}}
}

// SetReaders makes the transport serve exactly readers: it opens each
// adapter once, gives it one service per reader and advertises them.
// Readers no longer listed stop being served (their exchanges end) and an
// adapter left with no reader is closed. The node calls it at start and
// whenever its readers change. An invalid entry or an adapter that cannot
// be opened is reported in the error; the rest is applied, and a later
// call tries the failed adapters again.
func (t *Transport) SetReaders(readers []Reader) error {
	var errs []error
	want := map[string]map[string]bool{} // adapter → reader ids
	seen := map[string]bool{}
	for _, r := range readers {
		switch {
		case !validID(r.ID):
			errs = append(errs, fmt.Errorf("ble: bad reader id %q", r.ID))
			continue
		case r.Adapter == "":
			errs = append(errs, fmt.Errorf("ble: reader %s has no adapter", r.ID))
			continue
		case seen[r.ID]:
			errs = append(errs, fmt.Errorf("ble: reader %s listed twice", r.ID))
			continue
		}
		seen[r.ID] = true
		if want[r.Adapter] == nil {
			want[r.Adapter] = map[string]bool{}
		}
		want[r.Adapter][r.ID] = true
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	for name, a := range t.adapters {
		if want[name] == nil {
			if err := t.closeAdapter(a); err != nil {
				errs = append(errs, err)
			}
			delete(t.adapters, name)
			t.log.Info("ble adapter released", "adapter", name)
		}
	}
	for _, name := range sortedKeys(want) {
		ids := want[name]
		a := t.adapters[name]
		if a == nil {
			p, err := t.open(name)
			if err != nil {
				errs = append(errs, fmt.Errorf("ble: readers %s: %w", strings.Join(sortedKeys(ids), ", "), err))
				continue
			}
			a = &adapter{name: name, p: p, services: map[string]*service{}}
			t.adapters[name] = a
			t.log.Info("ble adapter opened", "adapter", name)
		}
		changed := a.advDone == nil // new, or its last publish failed
		for id, s := range a.services {
			if !ids[id] {
				s.stop()
				delete(a.services, id)
				changed = true
			}
		}
		for id := range ids {
			if a.services[id] == nil {
				a.services[id] = newService(t, id)
				changed = true
			}
		}
		if changed {
			if err := t.publish(a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// publish gives a's peripheral fresh GATT services for its readers and
// (re)starts advertising them. The services are rebuilt every time: go-ble
// writes attribute handles into the *ble.Service it is given, and
// connections made earlier keep the old ones.
func (t *Transport) publish(a *adapter) error {
	t.stopAdvertising(a)
	ids := sortedKeys(a.services)
	svcs := make([]*ble.Service, 0, len(ids))
	uuids := make([]ble.UUID, 0, len(ids))
	for _, id := range ids {
		s := a.services[id]
		svcs = append(svcs, s.gatt())
		uuids = append(uuids, slices.Clone(s.uuid))
	}
	if err := a.p.SetServices(svcs); err != nil {
		return fmt.Errorf("ble: %s: set services: %w", a.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stopAdv, a.advDone = cancel, make(chan struct{})
	t.wg.Add(1)
	go t.advertise(ctx, a.name, a.p, uuids, a.advDone)
	t.log.Info("ble readers served", "adapter", a.name, "readers", strings.Join(ids, ","))
	return nil
}

// advertise advertises uuids, taking turns when there are several, until
// ctx is done; a failure is logged and retried.
func (t *Transport) advertise(ctx context.Context, name string, p Peripheral, uuids []ble.UUID, done chan struct{}) {
	defer t.wg.Done()
	defer close(done)
	for i := 0; ; i++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		batch := uuids
		if len(uuids) > 1 {
			batch = uuids[i%len(uuids) : i%len(uuids)+1]
			actx, cancel = context.WithTimeout(ctx, advertiseSlot)
		}
		err := p.Advertise(actx, AdvertisedName, batch)
		early := actx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if early {
			t.log.Warn("ble advertising stopped; retrying", "adapter", name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(advertiseRetry):
			}
		}
	}
}

func (t *Transport) stopAdvertising(a *adapter) {
	if a.stopAdv != nil {
		a.stopAdv()
		<-a.advDone
		a.stopAdv, a.advDone = nil, nil
	}
}

// closeAdapter ends a's readers' exchanges, stops advertising and closes
// the peripheral.
func (t *Transport) closeAdapter(a *adapter) error {
	for _, s := range a.services {
		s.stop()
	}
	t.stopAdvertising(a)
	if err := a.p.Close(); err != nil {
		return fmt.Errorf("ble: close %s: %w", a.name, err)
	}
	return nil
}

// Close ends every exchange, releases the adapters and waits for the
// transport's goroutines.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	var errs []error
	for _, a := range t.adapters {
		errs = append(errs, t.closeAdapter(a))
	}
	t.adapters = nil
	t.mu.Unlock()
	t.wg.Wait()
	return errors.Join(errs...)
}

// validID is exchange's rule for ids: 1–64 bytes of printable ASCII.
func validID(s string) bool {
	if s == "" || len(s) > exchange.MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
