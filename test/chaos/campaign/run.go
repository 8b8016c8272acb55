package campaign

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// converge bounds how long the platform may take to settle after a round (a fault included).
const converge = 3 * time.Minute

// fault is injected once per round, after the round's actions. It returns once the platform is
// whole again (the operator running, the dependency back), with the moment the fault struck (the
// round's recovery is measured from then) and whether the operator still had work to do then
// (settled reports whether the platform already matched the script).
type fault func(ctx context.Context, settled func() bool) (struck time.Time, midWork bool, err error)

// runner plays a script against a stack.
type runner struct {
	stack  *testenv.Stack
	c      client.Client
	logf   func(string, ...any)
	script script
	prefix string
	// present and policy are what the script has done so far, by normalised tenant name.
	present map[string]bool
	policy  map[string]string
}

// play runs every round of the script: its actions, the fault if any, then waits until the platform
// has converged (every present Tenant Ready for its current spec, every deleted one gone with its
// namespace, or its namespace retained), and lets the customer write its data into each namespace
// that has none. It returns the time each round took to converge after its fault.
func (r *runner) play(ctx context.Context, inject fault) (recovery []time.Duration, midWork int, err error) {
	for t := 0; t < r.script.tenants; t++ {
		if withSecrets(t) {
			body := fmt.Sprintf(`{"data":{"token":%q}}`, randomHex())
			if code, _, err := r.stack.Vault.Do(ctx, http.MethodPost, "secret/data/tenants/"+tenantName(r.prefix, t)+"/api", body); err != nil || code != http.StatusOK {
				return nil, 0, fmt.Errorf("write tenant %d's Vault value: HTTP %d, %v", t, code, err)
			}
		}
	}
	settled := func() bool { return r.check(ctx) == nil }
	type struck struct {
		at   time.Time
		busy bool
		err  error
	}
	for i, rd := range r.script.rounds {
		// The fault is armed as the round starts, so that it can strike while the actions are
		// being applied as well as after.
		faulted := make(chan struck, 1)
		if inject != nil {
			go func() {
				at, busy, err := inject(ctx, settled)
				faulted <- struck{at, busy, err}
			}()
		}
		for _, a := range rd {
			if err := r.do(ctx, a); err != nil {
				return recovery, midWork, fmt.Errorf("round %d: %w", i, err)
			}
		}
		start := time.Now()
		if inject != nil {
			f := <-faulted
			if f.err != nil {
				return recovery, midWork, fmt.Errorf("round %d: fault: %w", i, f.err)
			}
			start = f.at
			if f.busy {
				midWork++
			}
		}
		if err := r.converged(ctx); err != nil {
			return recovery, midWork, fmt.Errorf("round %d (%s): not converged within %s after the fault: %w", i, describe(rd), converge, err)
		}
		took := time.Since(start)
		recovery = append(recovery, took)
		if inject != nil && took > 5*time.Second {
			r.logf("%s: round %d (%s) converged %s after its fault", r.prefix, i, describe(rd), took.Round(10*time.Millisecond))
		}
		if err := r.customerWrites(ctx); err != nil {
			return recovery, midWork, err
		}
	}
	return recovery, midWork, nil
}

func describe(rd round) string {
	var parts []string
	for _, a := range rd {
		parts = append(parts, fmt.Sprintf("%s t%02d", a.kind, a.tenant))
	}
	return strings.Join(parts, ", ")
}

// do carries out one action as a platform engineer's GitOps tool would: server-side apply of the
// Tenant, or its deletion.
func (r *runner) do(ctx context.Context, a action) error {
	name := tenantName(r.prefix, a.tenant)
	norm := strings.ReplaceAll(name, r.prefix, "RUN")
	switch a.kind {
	case "create", "edit":
		if out, err := r.stack.Kubectl(ctx, tenantManifest(r.prefix, a.tenant, a.version),
			"apply", "--server-side", "--field-manager=platform-gitops", "-f", "-"); err != nil {
			return fmt.Errorf("%s %s: %v: %s", a.kind, name, err, out)
		}
		r.present[norm] = true
		r.policy[norm] = deletionPolicy(a.tenant)
	case "delete":
		err := r.c.Delete(ctx, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		r.present[norm] = false
	}
	return nil
}

// converged waits until the platform matches the script so far.
func (r *runner) converged(ctx context.Context) error {
	return poll(ctx, converge, func() error { return r.check(ctx) })
}

// poll calls check every 250 ms until it returns nil, or returns its last error after within.
func poll(ctx context.Context, within time.Duration, check func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond): // the next poll
		}
	}
}

func (r *runner) check(ctx context.Context) error {
	for t := 0; t < r.script.tenants; t++ {
		name := tenantName(r.prefix, t)
		norm := strings.ReplaceAll(name, r.prefix, "RUN")
		present, known := r.present[norm]
		if !known {
			continue
		}
		tnt := &tenancyv1alpha1.Tenant{}
		err := r.c.Get(ctx, client.ObjectKey{Name: name}, tnt)
		ns := &corev1.Namespace{}
		nsErr := r.c.Get(ctx, client.ObjectKey{Name: "tenant-" + name}, ns)
		switch {
		case present && err != nil:
			return fmt.Errorf("tenant %s: %w", name, err)
		case present:
			c := meta.FindStatusCondition(tnt.Status.Conditions, tenancyv1alpha1.ConditionReady)
			if c == nil || c.ObservedGeneration != tnt.Generation || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("tenant %s is not Ready for generation %d: %+v", name, tnt.Generation, c)
			}
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("tenant %s is not gone yet (%v)", name, err)
		case r.policy[norm] == "Delete" && !apierrors.IsNotFound(nsErr):
			return fmt.Errorf("tenant %s's namespace is not gone yet (%v)", name, nsErr)
		case r.policy[norm] == "Retain" && (nsErr != nil || ns.Labels[tenancyv1alpha1.LabelRetained] != "true"):
			return fmt.Errorf("tenant %s's namespace is not retained (%v, labels %v)", name, nsErr, ns.Labels)
		}
	}
	return nil
}

// customerWrites has each customer keep its data in its namespace, once.
func (r *runner) customerWrites(ctx context.Context) error {
	for norm, present := range r.present {
		if !present {
			continue
		}
		ns := "tenant-" + strings.ReplaceAll(norm, "RUN", r.prefix)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: customerData}, Data: map[string]string{"orders": "42"}}
		if err := r.c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("the customer writes into %s: %w", ns, err)
		}
	}
	return nil
}

// cleanUp deletes every Tenant of the run and every namespace left for them.
func (r *runner) cleanUp(ctx context.Context) error {
	for t := 0; t < r.script.tenants; t++ {
		name := tenantName(r.prefix, t)
		if err := r.c.Delete(ctx, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name}}); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return poll(ctx, converge, func() error {
		var left []string
		for t := 0; t < r.script.tenants; t++ {
			name := tenantName(r.prefix, t)
			if err := r.c.Get(ctx, client.ObjectKey{Name: name}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
				left = append(left, name)
				continue
			}
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-" + name}}
			switch err := r.c.Get(ctx, client.ObjectKey{Name: ns.Name}, ns); {
			case apierrors.IsNotFound(err):
			case err != nil:
				return err
			default:
				left = append(left, ns.Name)
				if ns.DeletionTimestamp.IsZero() {
					if err := r.c.Delete(ctx, ns); client.IgnoreNotFound(err) != nil {
						return err
					}
				}
			}
		}
		if len(left) > 0 {
			sort.Strings(left)
			return fmt.Errorf("clean up: still there: %s", strings.Join(left, ", "))
		}
		return nil
	})
}

func randomHex() string {
	const digits = "0123456789abcdef"
	b := make([]byte, 32)
	for i := range b {
		b[i] = digits[rand.Intn(16)]
	}
	return string(b)
}
