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
