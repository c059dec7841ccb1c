package consensus

import (
	"context"
	"testing"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// A reader that takes its time (an export, the check of a whole import)
// holds no lock: applies go on beside it, and it keeps seeing the version
// it took, whatever they change.
func TestSlowReadDoesNotHoldApplies(t *testing.T) {
	r := single(t, t.TempDir())
	mustApply(t, r, cmd(1, &command.CreateSite{ID: "s1", AccountID: "acc", Name: "London"}))

	inRead, release := make(chan struct{}), make(chan struct{})
	seen := make(chan int, 1)
	go r.Read(func(s *state.State) {
		close(inRead)
		<-release
		seen <- s.Sites.Len()
	})
	<-inRead
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, res, err := r.Apply(ctx, cmd(2, &command.CreateSite{ID: "s2", AccountID: "acc", Name: "Paris"}))
		if err == nil && res.Err != nil {
			err = res.Err
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		close(release)
		t.Fatal("an apply waited for a read in progress")
	}
	var now int
	r.Read(func(s *state.State) { now = s.Sites.Len() })
	close(release)
	if got := <-seen; got != 1 || now != 2 {
		t.Fatalf("the slow read saw %d sites (want the 1 of its version), a read after the apply %d (want 2)", got, now)
	}
}
