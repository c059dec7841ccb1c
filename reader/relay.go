package reader

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// RelayWiring names the output lines of one reader's door. Each is a file
// that takes "1" (on) and "0" (off): a Linux GPIO value file
// (/sys/class/gpio/gpioN/value), or a relay board's equivalent. The relay
// is required; the LEDs are optional.
type RelayWiring struct {
	Relay, Amber, Green, Red string
}

// ParseDoorFlag parses one --door value:
//
//	READER_ID=relay:PATH[,amber:PATH][,green:PATH][,red:PATH]
func ParseDoorFlag(v string) (string, RelayWiring, error) {
	id, spec, ok := strings.Cut(v, "=")
	if !ok || id == "" || spec == "" {
		return "", RelayWiring{}, fmt.Errorf("--door %q: want READER_ID=relay:PATH[,amber:PATH][,green:PATH][,red:PATH]", v)
	}
	var w RelayWiring
	for _, part := range strings.Split(spec, ",") {
		name, path, ok := strings.Cut(part, ":")
		if !ok || path == "" {
			return "", w, fmt.Errorf("--door %q: %q is not NAME:PATH", v, part)
		}
		var dst *string
		switch name {
		case "relay":
			dst = &w.Relay
		case "amber":
			dst = &w.Amber
		case "green":
			dst = &w.Green
		case "red":
			dst = &w.Red
		default:
			return "", w, fmt.Errorf("--door %q: unknown output %q (relay, amber, green, red)", v, name)
		}
		if *dst != "" {
			return "", w, fmt.Errorf("--door %q: %s given twice", v, name)
		}
		*dst = path
	}
	if w.Relay == "" {
		return "", w, fmt.Errorf("--door %q: relay:PATH is required", v)
	}
	return id, w, nil
}

// RelayDoors is the door driver for relays and LEDs on output lines.
// Readers without wiring fall back to Fallback (a log). The relay is
// fail-secure: it is released at start and on Close.
type RelayDoors struct {
	Fallback Door
	log      *slog.Logger

	mu      sync.Mutex
	readers map[string]*relayReader
	closed  bool
}

type relayReader struct {
	w         RelayWiring
	lockAt    *time.Timer // relay back to 0
	idleAt    *time.Timer // LEDs back to off
	greenTill time.Time
}

// NewRelayDoors checks that every line can be written and sets them all
// off (door locked).
func NewRelayDoors(wiring map[string]RelayWiring, fallback Door, log *slog.Logger) (*RelayDoors, error) {
	d := &RelayDoors{Fallback: fallback, log: log, readers: map[string]*relayReader{}}
	for id, w := range wiring {
		for _, p := range []string{w.Relay, w.Amber, w.Green, w.Red} {
			if p == "" {
				continue
			}
			if err := setLine(p, false); err != nil {
				return nil, fmt.Errorf("--door %s: %w", id, err)
			}
		}
		d.readers[id] = &relayReader{w: w}
	}
	return d, nil
}

func setLine(path string, on bool) error {
	if path == "" {
		return nil
	}
	v := "0"
	if on {
		v = "1"
	}
	// O_WRONLY without O_CREATE: a GPIO line that is not exported is an
	// error, not a new regular file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	return errors.Join(err, f.Close())
}

func (d *RelayDoors) set(id, path string, on bool) {
	if err := setLine(path, on); err != nil {
		d.log.Error("door output", "reader", id, "line", path, "err", err)
	}
}

// Unlock energises the relay for dur; an unlock while open extends it.
func (d *RelayDoors) Unlock(readerID string, dur time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.readers[readerID]
	if !ok || d.closed {
		if !ok && d.Fallback != nil {
			d.Fallback.Unlock(readerID, dur)
		}
		return
	}
	d.set(readerID, r.w.Relay, true)
	if r.lockAt != nil {
		r.lockAt.Stop()
	}
	r.greenTill = time.Now().Add(dur)
	r.lockAt = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.closed {
			d.set(readerID, r.w.Relay, false)
		}
	})
	d.log.Info("door unlocked", "reader", readerID, "for", dur, "relay", r.w.Relay)
}

// Show lights one LED (or none); green stays while the door is open, red
// for DeniedFor.
func (d *RelayDoors) Show(readerID string, f Feedback) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.readers[readerID]
	if !ok || d.closed {
		if !ok && d.Fallback != nil {
			d.Fallback.Show(readerID, f)
		}
		return
	}
	d.light(readerID, r, f)
	if r.idleAt != nil {
		r.idleAt.Stop()
		r.idleAt = nil
	}
	var hold time.Duration
	switch f {
	case FeedbackGranted:
		hold = time.Until(r.greenTill)
		if hold <= 0 {
			hold = time.Second
		}
	case FeedbackDenied:
		hold = DeniedFor
	default:
		return
	}
	r.idleAt = time.AfterFunc(hold, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.closed {
			d.light(readerID, r, FeedbackIdle)
		}
	})
}

func (d *RelayDoors) light(id string, r *relayReader, f Feedback) {
	d.set(id, r.w.Amber, f == FeedbackConnecting)
	d.set(id, r.w.Green, f == FeedbackGranted)
	d.set(id, r.w.Red, f == FeedbackDenied)
}

// Close locks every door and turns the LEDs off.
func (d *RelayDoors) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for id, r := range d.readers {
		if r.lockAt != nil {
			r.lockAt.Stop()
		}
		if r.idleAt != nil {
			r.idleAt.Stop()
		}
		d.set(id, r.w.Relay, false)
		d.light(id, r, FeedbackIdle)
	}
}
