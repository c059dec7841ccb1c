package node

import (
	"testing"
	"time"
)

func TestMailBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := backoff(mailMaxAttempts); got != mailBackoffMax {
		t.Errorf("backoff(%d) = %v, want the cap %v", mailMaxAttempts, got, mailBackoffMax)
	}
}

func TestSenderAddress(t *testing.T) {
	for in, want := range map[string]string{
		"node1":        "lintel@node1.local",
		"Lobby_East.2": "lintel@lobby-east.2.local",
		"__":           "lintel@lintel.local",
	} {
		if got := senderAddress(in); got != want {
			t.Errorf("senderAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
