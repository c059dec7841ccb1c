package reader

import (
	"log/slog"
	"time"
)

// Feedback is what a reader's LEDs (and buzzer) show the person at the door.
type Feedback int

const (
	FeedbackIdle       Feedback = iota // off
	FeedbackConnecting                 // amber: a phone is in the exchange
	FeedbackGranted                    // green: the door opens
	FeedbackDenied                     // red: refused
)

func (f Feedback) String() string {
	switch f {
	case FeedbackConnecting:
		return "amber"
	case FeedbackGranted:
		return "green"
	case FeedbackDenied:
		return "red"
	}
	return "off"
}

// Door drives a reader's door output and its feedback. Calls never block
// on the hardware for long and never fail the exchange: a driver logs its
// own errors.
type Door interface {
	// Unlock releases the door for d; a new unlock while open extends it.
	Unlock(readerID string, d time.Duration)
	// Show sets the feedback; granted and denied fall back to idle by
	// themselves (green for the unlock time, red for DeniedFor).
	Show(readerID string, f Feedback)
}

// DeniedFor is how long red stays on after a denial.
const DeniedFor = 2 * time.Second

// LogDoor is the door driver with no hardware: it logs each unlock, and
// the feedback at debug level.
type LogDoor struct{ Log *slog.Logger }

// Unlock logs the unlock.
func (d LogDoor) Unlock(readerID string, dur time.Duration) {
	d.Log.Info("door unlocked", "reader", readerID, "for", dur)
}

// Show logs the feedback.
func (d LogDoor) Show(readerID string, f Feedback) {
	d.Log.Debug("reader feedback", "reader", readerID, "led", f.String())
}
