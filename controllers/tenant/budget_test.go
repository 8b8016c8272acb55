package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestNewTenantCostsItsObjectsAFinalizerAndAStatus: a new minimal tenant (owners only) costs the
// operator one apply per object it makes, one finalizer patch, one status patch, one read the cache
// cannot answer (is its namespace's name taken by someone else?) and one event, Ready's: nothing
// more, however its passes fall. (test/e2e counts the same over 100 tenants made at once.)
func TestNewTenantCostsItsObjectsAFinalizerAndAStatus(t *testing.T) {
	ctx := context.Background()
	const name = "budget"
	// The metrics are readable once the manager's cache has started (the readiness gauge reads it).
	testenv.Eventually(t, wait, func() error { _, err := metrics.Registry.Gather(); return err })
	mark, passes := writes.mark(), reconcileCount(t)
	createTenant(t, &tenancyv1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       tenancyv1alpha1.TenantSpec{Owners: []tenancyv1alpha1.Subject{owner("User", "budget-owner")}},
	})
	waitForReady(t, name)
	// The objects' own watch events bring the tenant back at least once more: count after that
	// pass, and whatever it queued, are done.
	tenantIdle(t, passes+2)

	requests := writes.requestsSince(mark, "tenant-"+name, "/tenants/"+name, "tenantctl:tenant:"+name)
	objects := countObjects(t, name)
	var finalizer, status, applies, reads, other []string
	for _, r := range requests {
		switch {
		case r == http.MethodPatch+" /apis/tenancy.tenantctl.io/v1alpha1/tenants/"+name:
			finalizer = append(finalizer, r)
		case r == http.MethodPatch+" /apis/tenancy.tenantctl.io/v1alpha1/tenants/"+name+"/status":
			status = append(status, r)
		case strings.HasPrefix(r, http.MethodPatch+" "):
			applies = append(applies, r)
		case strings.HasPrefix(r, http.MethodGet+" "):
			reads = append(reads, r)
		default:
			other = append(other, r)
		}
	}
	t.Logf("a new minimal tenant of %d objects cost %d requests: %d applies, %d finalizer and %d status patches, %d reads, %d other",
		objects, len(requests), len(applies), len(finalizer), len(status), len(reads), len(other))
	if len(applies) != objects || len(finalizer) != 1 || len(status) != 1 || len(reads) != 1 || len(other) != 0 {
		t.Errorf("want one apply per object (%d), one finalizer patch, one status patch and one read; got:\n%s", objects, strings.Join(requests, "\n"))
	}

	var events []string
	testenv.Eventually(t, wait, func() error { // events are sent asynchronously
		list, err := clientset.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		events = nil
		for _, e := range list.Items {
			if e.Regarding.Kind == "Tenant" && e.Regarding.Name == name {
				events = append(events, fmt.Sprintf("%s %s %s: %s", e.Type, e.Action, e.Reason, e.Note))
			}
		}
		if len(events) == 0 {
			return fmt.Errorf("no event for tenant %s yet", name)
		}
		return nil
	})
	if len(events) != 1 || !strings.HasPrefix(events[0], "Normal Ready Ready: ") {
		t.Errorf("want one event, Ready's; got:\n%s", strings.Join(events, "\n"))
	}
}

// tenantIdle waits until the Tenant controller has finished at least passes passes in all, and
// has nothing queued and nothing running.
func tenantIdle(t *testing.T, passes float64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		families, err := metrics.Registry.Gather()
		if err != nil {
			return err
		}
		busy := 0.0
		for _, f := range families {
			if f.GetName() != "workqueue_depth" && f.GetName() != "controller_runtime_active_workers" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if (l.GetName() == "name" || l.GetName() == "controller") && l.GetValue() == "tenant" {
						busy += m.GetGauge().GetValue()
					}
				}
			}
		}
		if done := reconcileCount(t); done < passes || busy != 0 {
			return fmt.Errorf("%v Tenant passes done (want %v), %v queued or running", done, passes, busy)
		}
		return nil
	})
}

// countObjects counts what carries the tenant's label, of the kinds a minimal tenant is made of.
func countObjects(t *testing.T, tenant string) int {
	t.Helper()
	n := 0
	for _, list := range []client.ObjectList{&corev1.NamespaceList{}, &corev1.ResourceQuotaList{}, &corev1.LimitRangeList{},
		&networkingv1.NetworkPolicyList{}, &rbacv1.RoleBindingList{}, &rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{}} {
		if err := admin.List(context.Background(), list, client.MatchingLabels{tenancyv1alpha1.LabelTenant: tenant}); err != nil {
			t.Fatal(err)
		}
		items, err := metaItems(list)
		if err != nil {
			t.Fatal(err)
		}
		n += len(items)
	}
	return n
}
