package rolebinding_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestNewGrantCostsOneApplyAndOneStatusWrite: a grant made in force costs the RoleBinding
// controller one apply (its RBAC RoleBinding) and one status patch, however its passes fall: the
// pass that the RBAC RoleBinding's own watch event brings right after the first does not write the
// same status again on a resourceVersion the cache has not caught up with.
func TestNewGrantCostsOneApplyAndOneStatusWrite(t *testing.T) {
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		passes := rolebindingIdle(t)
		mark := operatorRequests.mark()
		rb := grant(acmeNS, fmt.Sprintf("frank-%d", i), "viewer", time.Hour, user("acme:frank"))
		if err := as(t, "acme:admin").Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.Delete(context.Background(), rb) })
		testenv.Eventually(t, wait, func() error {
			c, ok := condition(t, client.ObjectKeyFromObject(rb), tenancyv1alpha1.ConditionReady)
			if !ok || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("Ready is %+v", c)
			}
			// The RBAC RoleBinding's watch event brings the grant back at least once more.
			if n := rolebindingIdle(t); n < passes+2 {
				return fmt.Errorf("%v RoleBinding passes, want at least %v", n, passes+2)
			}
			return nil
		})
		var sent []string
		for _, r := range operatorRequests.since(mark) {
			if strings.Contains(r, rb.Name) && !strings.Contains(r, "watch=true") {
				path, _, _ := strings.Cut(r, "?")
				sent = append(sent, path)
			}
		}
		want := []string{
			"PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/" + acmeNS + "/rolebindings/tenancy:" + rb.Name,
			"PATCH /apis/tenancy.tenantctl.io/v1alpha1/namespaces/" + acmeNS + "/rolebindings/" + rb.Name + "/status",
		}
		if strings.Join(sent, "\n") != strings.Join(want, "\n") {
			t.Errorf("grant %s sent:\n%s\nwant:\n%s", rb.Name, strings.Join(sent, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestRevokedGrantCostsNoRequest: once a grant has expired and its RBAC RoleBinding is gone, a pass
// over it (here brought by a change to its metadata; in a cluster also by its Tenant's status
// changes and by resyncs) finds nothing in the cache to revoke and sends no request for it.
func TestRevokedGrantCostsNoRequest(t *testing.T) {
	ctx := context.Background()
	rb := grant(acmeNS, "erin-temporary", "viewer", 3*time.Second, user("acme:erin"))
	if err := as(t, "acme:admin").Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), rb) })
	testenv.Eventually(t, wait, func() error {
		c, ok := condition(t, client.ObjectKeyFromObject(rb), tenancyv1alpha1.ConditionExpired)
		if !ok || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Expired is %+v", c)
		}
		return nil
	})
	passes := rolebindingIdle(t)

	mark := operatorRequests.mark()
	patch := client.MergeFrom(rb.DeepCopy())
	rb.Annotations = map[string]string{"example.com/ticket": "CHG-2"}
	if err := admin.Patch(ctx, rb, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if n := rolebindingIdle(t); n <= passes {
			return fmt.Errorf("%v RoleBinding passes, want more than %v", n, passes)
		}
		return nil
	})
	var sent []string
	for _, r := range operatorRequests.since(mark) {
		if strings.Contains(r, "erin-temporary") && !strings.Contains(r, "watch=true") {
			sent = append(sent, r)
		}
	}
	if len(sent) > 0 {
		t.Errorf("a pass over a revoked grant sent %d requests, want none:\n%s", len(sent), strings.Join(sent, "\n"))
	}
}

// rolebindingIdle waits until the RoleBinding controller has nothing queued and nothing running,
// and returns how many passes it has finished.
func rolebindingIdle(t *testing.T) float64 {
	t.Helper()
	var done float64
	testenv.Eventually(t, wait, func() error {
		m := gather(t)
		depth, active := m["workqueue_depth"], m["controller_runtime_active_workers"]
		done = m["controller_runtime_reconcile_total"]
		if depth != 0 || active != 0 {
			return fmt.Errorf("the RoleBinding controller has %v queued and %v running", depth, active)
		}
		return nil
	})
	return done
}

// gather sums, per metric family, the samples of the RoleBinding controller and its queue.
func gather(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			ours := false
			for _, l := range m.GetLabel() {
				ours = ours || ((l.GetName() == "controller" || l.GetName() == "name") && l.GetValue() == "rolebinding")
			}
			if !ours {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				out[f.GetName()] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[f.GetName()] += m.GetGauge().GetValue()
			}
		}
	}
	return out
}
