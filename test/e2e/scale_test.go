//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
)

// The request budget of a new minimal Tenant (owners only, default deletion policy), from its
// creation until it is Ready and the operator is quiet: its eight objects (namespace, quota, limit
// range, two network policies, the owners' RoleBinding, the member ClusterRole and its binding),
// one finalizer patch and one status patch make ten writes; the budget leaves room for two more
// (an Event, a retried conflict) and for a few reads that are not served by the cache.
const (
	requestsPerTenant = 15
	writesPerTenant   = 12
	// idleWindow is how long the operator is watched for any request once the tenants are settled.
	idleWindow = 60 * time.Second
)

// TestScaleMinimalTenantsStayWithinTheRequestBudget creates 100 minimal tenants the way a GitOps
// tool does (server-side apply, ten at a time), and counts, from the operator's own client metrics,
// what they cost it: at most 15 requests and 12 writes per tenant until they are Ready and settled,
// and no request at all over a minute of idle afterwards. Other tests in this package run one after
// another in the same stack (none calls t.Parallel), so the operator's counters move only for this
// test's tenants while it measures; it waits for the operator to be quiet before it starts.
func TestScaleMinimalTenantsStayWithinTheRequestBudget(t *testing.T) {
	const total, concurrency = 100, 10

	// Whatever an earlier test left the operator doing (its cleanup's last passes) is over.
	settled(t, 0)
	passes := int(scrape(t, "controller_runtime_reconcile_total", "", `controller="tenant"`)[""])
	before := apiRequests(t)

	names := make([]string, total)
	for i := range names {
		names[i] = newTenantName(t, "scale")
	}
	var wg sync.WaitGroup
	next := make(chan string)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range next {
				// applyTenant's kubectl, without its t.Fatal, which only the test's goroutine may call.
				manifest := fmt.Sprintf("apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: %s\nspec:\n  owners:\n  - {kind: User, name: scale-owner}\n", name)
				if out, err := stack.Kubectl(context.Background(), manifest, "apply", "--server-side", "--field-manager=platform-gitops", "-f", "-"); err != nil {
					t.Errorf("apply tenant %s: %v\n%s", name, err, out)
				}
			}
		}()
	}
	for _, name := range names {
		next <- name
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, name := range names {
		expectCondition(t, name, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	}
	settled(t, passes+total)
	after := apiRequests(t)

	cost := delta(before, after)
	done := scrape(t, "controller_runtime_reconcile_total", "", `controller="tenant"`)[""] - float64(passes)
	t.Logf("%d minimal tenants cost the operator %s requests (%s per tenant), %v of them writes (%.2f per tenant), in %v Tenant passes (%.2f per tenant)",
		total, byMethod(cost, 1), byMethod(cost, total), writesOf(cost), writesOf(cost)/total, done, done/total)
	if n := sum(cost) / total; n > requestsPerTenant {
		t.Errorf("a minimal tenant costs %.2f requests, want at most %d (by method, per tenant: %s)", n, requestsPerTenant, byMethod(cost, total))
	}
	if w := writesOf(cost) / total; w > writesPerTenant {
		t.Errorf("a minimal tenant costs %.2f writes, want at most %d (by method, per tenant: %s)", w, writesPerTenant, byMethod(cost, total))
	}

	// Idle: the tenants are Ready and nothing changes. The window is bounded by a ticker and the
	// assertion is on the count of requests in it, whatever the window's exact length.
	start := apiRequests(t)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < int(idleWindow/time.Second); i++ {
		<-tick.C
	}
	idle := delta(start, apiRequests(t))
	t.Logf("over %s of idle with %d Ready tenants the operator sent %s requests", idleWindow, total, byMethod(idle, 1))
	if n := sum(idle); n != 0 {
		t.Errorf("idle, the operator sent %v requests, want 0 (by method: %s)", n, byMethod(idle, 1))
	}
}

// delta is after minus before, by method, leaving out the methods that did not move.
func delta(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for method, n := range after {
		if d := n - before[method]; d != 0 {
			out[method] = d
		}
	}
	return out
}

func sum(counts map[string]float64) float64 {
	total := 0.0
	for _, n := range counts {
		total += n
	}
	return total
}

// byMethod prints counts divided by per, by method in a stable order, with the total first.
func byMethod(counts map[string]float64, per int) string {
	methods := make([]string, 0, len(counts))
	for m := range counts {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	parts := []string{fmt.Sprintf("total=%.2f", sum(counts)/float64(per))}
	for _, m := range methods {
		parts = append(parts, fmt.Sprintf("%s=%.2f", m, counts[m]/float64(per)))
	}
	return strings.Join(parts, " ")
}
