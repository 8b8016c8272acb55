package testenv

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends the goroutine, as the
// real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (*fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// consistently runs Consistently on a recorder and returns what it reported ("" when it held).
func consistently(window time.Duration, check func() error) string {
	rec := &fatalRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Consistently(rec, window, check)
	}()
	<-done
	return rec.msg
}

func TestConsistentlyHoldsForTheWholeWindow(t *testing.T) {
	const window = 300 * time.Millisecond
	calls := 0
	start := time.Now()
	if msg := consistently(window, func() error { calls++; return nil }); msg != "" {
		t.Fatalf("failed although check always held: %s", msg)
	}
	if elapsed := time.Since(start); elapsed < window {
		t.Errorf("returned after %s, before the %s window ended", elapsed, window)
	}
	if calls < 3 {
		t.Errorf("check ran %d times in %s; want it observed throughout", calls, window)
	}
}

func TestConsistentlyFailsAtTheFirstError(t *testing.T) {
	calls := 0
	msg := consistently(10*time.Second, func() error {
		if calls++; calls == 3 {
			return errors.New("it happened")
		}
		return nil
	})
	if !strings.Contains(msg, "it happened") || calls != 3 {
		t.Errorf("after %d checks reported %q; want the third check's error at once", calls, msg)
	}
}
