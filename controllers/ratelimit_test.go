package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// A tenant that keeps failing through a long outage is tried again at most MaxRetryDelay apart, so
// that it is reconciled within that long of the outage's end (the fault campaign's dependencies
// class measures it end to end); the first retries stay quick.
func TestRetryAfterFailureWaitsAtMostMaxRetryDelay(t *testing.T) {
	rl := RetryAfterFailure()
	item := reconcile.Request{NamespacedName: types.NamespacedName{Name: "acme"}}
	var waits []time.Duration
	for range 40 { // 40 failures in a row: far past the point where the wait would double beyond it
		waits = append(waits, rl.When(item))
	}
	if waits[0] > 100*time.Millisecond {
		t.Errorf("the first retry waits %s, want it quick", waits[0])
	}
	for i, w := range waits {
		if w > MaxRetryDelay {
			t.Fatalf("failure %d waits %s, more than %s", i+1, w, MaxRetryDelay)
		}
	}
	if last := waits[len(waits)-1]; last != MaxRetryDelay {
		t.Errorf("after 40 failures the wait is %s, want the cap %s", last, MaxRetryDelay)
	}
	rl.Forget(item)
	if w := rl.When(item); w > 100*time.Millisecond {
		t.Errorf("after a success the next failure waits %s, want the backoff reset", w)
	}
}
