package testenv

import (
	"testing"
	"time"
)

// Eventually calls check until it returns nil or the deadline passes, then fails the test with the
// last error. It is the only way tests wait: there are no sleeps as synchronisation.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = check(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Consistently calls check every tick for the whole window and fails the test at its first error.
// It is a bounded observation that something does not happen, not a sleep: it returns as soon as
// the window has passed with check holding at every tick, the last one at or after the window's end.
func Consistently(t testing.TB, window time.Duration, check func() error) {
	t.Helper()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	start := time.Now()
	end := start.Add(window)
	for {
		if err := check(); err != nil {
			t.Fatalf("after %s of %s: %v", time.Since(start).Round(time.Millisecond), window, err)
		}
		if !time.Now().Before(end) {
			return
		}
		<-ticker.C
	}
}
