package vault

// Calls to Vault are bounded: reconcile workers sharing one Client reach Vault together, and a call
// waits for Vault no longer than its caller's context allows.

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// silentVault is a Vault that accepts connections and never answers, as a hung server or a
// black-holing network path does. accepted receives each connection as it is accepted.
func silentVault(t *testing.T) (address string, accepted <-chan net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64) // more than any test opens
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns <- conn
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(conns)
		for conn := range conns {
			conn.Close()
		}
	})
	return "http://" + l.Addr().String(), conns
}

func silentClient(t *testing.T) (*Client, <-chan net.Conn) {
	t.Helper()
	op := setUp(t)
	address, accepted := silentVault(t)
	v := cfg()
	v.Address = address
	c, err := New(v, op.reader)
	if err != nil {
		t.Fatal(err)
	}
	return c, accepted
}

// ensureWithin runs EnsurePolicy with ctx and returns its error, failing the test if the call has
// not returned after patience.
func ensureWithin(t *testing.T, ctx context.Context, c *Client, p secrets.Policy) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := c.EnsurePolicy(ctx, p)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(patience):
		t.Fatalf("a call with a deadline had not returned after %s", patience)
		return nil
	}
}

// A call to a Vault that never answers ends at its caller's deadline, and says so: the condition
// reports Vault unavailable (not a refusal), and the caller can tell its own deadline from an answer.
func TestCallEndsWithItsContext(t *testing.T) {
	c, _ := silentClient(t)
	_, policies, _ := acme()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := ensureWithin(t, ctx, c, policies[0])
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("EnsurePolicy against a silent Vault with a 200ms deadline: %v, want ErrUnavailable wrapping context.DeadlineExceeded", err)
	}
}

// A call stuck on a silent Vault does not hold the others: a second call still ends at its own
// deadline, and the stuck one ends when its caller cancels.
func TestStuckCallDoesNotHoldOthers(t *testing.T) {
	c, accepted := silentClient(t)
	_, policies, _ := acme()

	stuckCtx, cancelStuck := context.WithCancel(context.Background())
	defer cancelStuck()
	stuck := make(chan error, 1)
	go func() {
		_, err := c.EnsurePolicy(stuckCtx, policies[0])
		stuck <- err
	}()
	select {
	case conn := <-accepted: // the stuck call's request reached the silent Vault
		defer conn.Close()
	case <-time.After(patience):
		t.Fatalf("the first call did not reach Vault within %s", patience)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ensureWithin(t, ctx, c, policies[0]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second call while the first is stuck: %v, want context.DeadlineExceeded", err)
	}

	cancelStuck()
	select {
	case err := <-stuck:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the stuck call after its caller cancelled: %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatalf("the stuck call had not returned %s after its caller cancelled", patience)
	}
}
