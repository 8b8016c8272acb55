package vault

// Calls to Vault are bounded: reconcile workers sharing one Client reach Vault together, and a call
// waits for Vault no longer than its caller's context allows.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
)

// A generous bound on anything that should happen at once: reaching it is a failure, not a wait.
const patience = 20 * time.Second

// gate is an HTTP proxy in front of the real Vault that holds each request until want requests are
// in flight together, and records the most it saw. Calls made one after another never open it: it
// gives up after patience, lets everything through, and the most in flight stays 1.
type gate struct {
	want int
	open chan struct{}
	once sync.Once

	mu                sync.Mutex
	inFlight, maximum int
}

func newGate(t *testing.T, want int) (*gate, string) {
	t.Helper()
	target, err := url.Parse(server.Address)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{want: want, open: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.inFlight++
		g.maximum = max(g.maximum, g.inFlight)
		if g.inFlight >= g.want {
			g.once.Do(func() { close(g.open) })
		}
		g.mu.Unlock()
		defer func() { g.mu.Lock(); g.inFlight--; g.mu.Unlock() }()
		select {
		case <-g.open:
		case <-time.After(patience):
			g.once.Do(func() { close(g.open) })
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func (g *gate) most() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maximum
}

// Reconcile workers share one Client: their calls are in flight at the same time, not queued
// behind one lock.
func TestCallsRunConcurrently(t *testing.T) {
	const workers = 4
	op := setUp(t)
	g, address := newGate(t, workers)
	v := cfg()
	v.Address = address
	c, err := New(v, op.reader)
	if err != nil {
		t.Fatal(err)
	}
	_, policies, _ := acme()
	errs := make(chan error, workers)
	for i := range workers {
		p := secrets.Policy{Name: fmt.Sprintf("%s-%d", policies[0].Name, i), Rules: policies[0].Rules}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*patience)
			defer cancel()
			_, err := c.EnsurePolicy(ctx, p)
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := g.most(); got < workers {
		t.Fatalf("at most %d request(s) reached Vault at once from %d concurrent calls, want %d", got, workers, workers)
	}
}
