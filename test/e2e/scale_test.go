//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// The request budget of a new minimal Tenant (owners only, default deletion policy), from its
// creation until it is Ready and the operator is quiet: its eight objects (namespace, quota, limit
// range, two network policies, the owners' RoleBinding, the member ClusterRole and its binding),
// one finalizer patch and one status patch make ten writes; the budget leaves room for two more
// (Ready's event, a retried conflict) and for a few reads that the cache cannot answer.
const (
	requestsPerTenant = 15
	writesPerTenant   = 12
	// idleWindow is how long the operator is watched for any request once everything is settled.
	idleWindow = 60 * time.Second
)

// TestScaleMinimalTenantsStayWithinTheRequestBudget creates 100 minimal tenants the way a GitOps
// tool does (server-side apply, ten at a time), and counts, from the operator's own client metrics,
// what they cost it: at most 15 requests and 12 writes per tenant until they are Ready and settled.
// Then grants are made in ten of the tenants, some of which expire, and the operator is watched
// over a minute of idle: it sends no request but its informers' watch renewals.
//
// The other tests of this package run one after another in the same stack (none calls
// t.Parallel), so the operator's counters move only for this test while it measures; it waits for
// the operator to be quiet before it starts.
func TestScaleMinimalTenantsStayWithinTheRequestBudget(t *testing.T) {
	const total, concurrency, withGrants = 100, 10, 10

	// Whatever an earlier test left the operator doing (its cleanup's last passes) is over.
	settled(t, 0)
	passes := int(scrape(t, "controller_runtime_reconcile_total", "", `controller="tenant"`)[""])
	before, beforeByVerb := apiRequests(t), requestsByVerb(t)

	names := make([]string, total)
	for i := range names {
		names[i] = newTenantName(t, "scale")
	}
	kubectlConcurrently(t, concurrency, names, func(name string) string {
		return fmt.Sprintf("apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: %s\nspec:\n  owners:\n  - {kind: User, name: scale-owner}\n", name)
	})
	for _, name := range names {
		expectCondition(t, name, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	}
	settled(t, passes+total)

	cost, costByVerb := delta(before, apiRequests(t)), delta(beforeByVerb, requestsByVerb(t))
	done := scrape(t, "controller_runtime_reconcile_total", "", `controller="tenant"`)[""] - float64(passes)
	t.Logf("%d minimal tenants cost the operator %s requests, %v of them writes, in %v Tenant passes", total, breakdown(cost, 1), writesOf(cost), done)
	t.Logf("per tenant: %s requests, %.2f writes, %.2f passes; by verb and resource: %s",
		breakdown(cost, total), writesOf(cost)/total, done/total, breakdown(costByVerb, total))
	if n := sum(cost) / total; n > requestsPerTenant {
		t.Errorf("a minimal tenant costs %.2f requests, want at most %d (per tenant: %s)", n, requestsPerTenant, breakdown(costByVerb, total))
	}
	if w := writesOf(cost) / total; w > writesPerTenant {
		t.Errorf("a minimal tenant costs %.2f writes, want at most %d (per tenant: %s)", w, writesPerTenant, breakdown(costByVerb, total))
	}

	// Grants in ten tenants, one that stays in force and one that expires, so that the idle window
	// comes after the RoleBinding controller's one timed requeue (an expiry) too.
	grantsBefore := requestsByVerb(t)
	expires := time.Now().Add(20 * time.Second).UTC().Format(time.RFC3339)
	var grants []client.ObjectKey
	var manifests []string
	for _, name := range names[:withGrants] {
		for grant, expiry := range map[string]string{"scale-viewer": "", "scale-expiring": "  expiresAt: " + expires + "\n"} {
			key := client.ObjectKey{Namespace: ns(name), Name: grant}
			grants = append(grants, key)
			manifests = append(manifests, fmt.Sprintf("apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: RoleBinding\nmetadata:\n  name: %s\n  namespace: %s\n"+
				"spec:\n  role: viewer\n  subjects:\n  - {kind: User, name: scale-auditor}\n  reason: CHG-1 scale test\n%s", key.Name, key.Namespace, expiry))
			t.Cleanup(func() {
				kubectl(t, "", "delete", "rolebindings.tenancy.tenantctl.io", key.Name, "-n", key.Namespace, "--ignore-not-found")
			})
		}
	}
	kubectlConcurrently(t, concurrency, manifests, func(manifest string) string { return manifest })
	for _, key := range grants {
		typ, want := tenancyv1alpha1.ConditionReady, metav1.ConditionTrue
		if key.Name == "scale-expiring" {
			typ = tenancyv1alpha1.ConditionExpired
		}
		expectGrantCondition(t, key, typ, want)
	}
	settled(t, 0)
	t.Logf("%d grants, half of them expired since, cost the operator %s requests", len(grants), breakdown(delta(grantsBefore, requestsByVerb(t)), 1))

	// Idle: the tenants are Ready, the grants in force or expired, and nothing changes. The window
	// is bounded by a ticker, and the assertion is on the count of requests in it, whatever its
	// exact length. Each informer renews its watch every 5 to 10 minutes, whatever the number of
	// tenants: that is the one request idle may cost, once per resource at most in a minute.
	start := requestsByVerb(t)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < int(idleWindow/time.Second); i++ {
		<-tick.C
	}
	idle := delta(start, requestsByVerb(t))
	t.Logf("over %s of idle with %d Ready tenants and %d grants the operator sent %s requests", idleWindow, total, len(grants), breakdown(idle, 1))
	for request, n := range idle {
		if strings.HasPrefix(request, "watch ") && n <= 1 {
			continue // a watch renewal
		}
		t.Errorf("idle, the operator sent %v %s requests, want none but a watch renewal per resource", n, request)
	}
}

// kubectlConcurrently applies one manifest per item server-side, as a GitOps tool does, with
// concurrency applies at a time, and fails the test if any failed.
func kubectlConcurrently(t *testing.T, concurrency int, items []string, manifest func(string) string) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan string)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for item := range next {
				// kubectl's, without its t.Fatal, which only the test's goroutine may call.
				if out, err := stack.Kubectl(context.Background(), manifest(item), "apply", "--server-side", "--field-manager=platform-gitops", "-f", "-"); err != nil {
					t.Errorf("kubectl apply: %v\n%s", err, out)
				}
			}
		}()
	}
	for _, item := range items {
		next <- item
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func expectGrantCondition(t *testing.T, key client.ObjectKey, typ string, want metav1.ConditionStatus) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		rb := &tenancyv1alpha1.RoleBinding{}
		if err := k8s.Get(context.Background(), key, rb); err != nil {
			return err
		}
		c := meta.FindStatusCondition(rb.Status.Conditions, typ)
		if c == nil || c.ObservedGeneration != rb.Generation || c.Status != want {
			return fmt.Errorf("grant %s: %s is %+v, want %s", key, typ, c, want)
		}
		return nil
	})
}

// requestsByVerb are the operator's requests by verb and resource ("patch tenants/status"), from
// its tenant_operator_api_requests_total, which tells a watch from a read.
func requestsByVerb(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for verb := range scrape(t, "tenant_operator_api_requests_total", "verb") {
		for resource, n := range scrape(t, "tenant_operator_api_requests_total", "resource", `verb="`+verb+`"`) {
			out[verb+" "+resource] = n
		}
	}
	return out
}

// delta is after minus before, per key, leaving out the keys that did not move.
func delta(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for key, n := range after {
		if d := n - before[key]; d != 0 {
			out[key] = d
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

// breakdown prints counts divided by per, in a stable order, with the total first.
func breakdown(counts map[string]float64, per int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{"total=" + number(sum(counts)/float64(per))}
	for _, k := range keys {
		parts = append(parts, strings.ReplaceAll(k, " ", ":")+"="+number(counts[k]/float64(per)))
	}
	return strings.Join(parts, " ")
}

func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
