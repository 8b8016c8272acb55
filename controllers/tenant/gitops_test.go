package tenant_test

import (
	"context"
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// kstatusOf computes a Tenant's status the way Flux's health checks and kstatus-based tools do.
func kstatusOf(t *testing.T, name string) (*status.Result, error) {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(getTenant(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return status.Compute(&unstructured.Unstructured{Object: obj})
}

func expectKstatus(t *testing.T, name string, want status.Status) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		res, err := kstatusOf(t, name)
		if err != nil {
			return err
		}
		if res.Status != want {
			return fmt.Errorf("kstatus of tenant %s is %s (%s), want %s", name, res.Status, res.Message, want)
		}
		return nil
	})
}

func TestKstatusFollowsTheTenant(t *testing.T) {
	// Ready: Current.
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "ks-ready"}})
	waitForReady(t, "ks-ready")
	expectKstatus(t, "ks-ready", status.CurrentStatus)

	// Waiting for its database: InProgress, for as long as CloudNativePG has not made it ready.
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "ks-db"},
		Spec: tenancyv1alpha1.TenantSpec{Database: dedicated(false)}})
	waitForCondition(t, "ks-db", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "")
	expectKstatus(t, "ks-db", status.InProgressStatus)
	markClusterHealthy(t, "tenant-ks-db", nil) // stand-in for CloudNativePG
	expectKstatus(t, "ks-db", status.CurrentStatus)

	// A spec the operator cannot act on: Failed, so a GitOps sync stops waiting and says why.
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "ks-bad"},
		Spec: tenancyv1alpha1.TenantSpec{SSO: &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{
			{Group: "ks-bad-ops", Role: "superuser"}}}}})
	expectKstatus(t, "ks-bad", status.FailedStatus)

	// After a spec change, Current means the new generation was acted on (kstatus reads a lagging
	// observedGeneration as InProgress).
	tnt := getTenant(t, "ks-ready")
	if r, _ := kstatusOf(t, "ks-ready"); r.Status != status.CurrentStatus {
		t.Fatalf("before the change: %s", r.Status)
	}
	tnt.Spec.DisplayName = "Ready Tenant, renamed"
	if err := admin.Update(context.Background(), tnt); err != nil {
		t.Fatal(err)
	}
	expectKstatus(t, "ks-ready", status.CurrentStatus) // after the operator's pass on the new generation
	if got := getTenant(t, "ks-ready"); got.Status.ObservedGeneration != got.Generation {
		t.Errorf("Current with observedGeneration %d of generation %d", got.Status.ObservedGeneration, got.Generation)
	}
}

// A GitOps tool or a platform script adds its own labels and annotations to objects the operator
// manages, with its own field manager. The operator applies only its own fields: theirs survive
// every reconcile, and ours are restored.
func TestForeignFieldsSurviveReconciliation(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "gitops"}})
	waitForReady(t, "gitops")
	np := &networkingv1.NetworkPolicy{}
	get(t, np, "tenant-gitops", "tenant-default-deny")

	foreign := &unstructured.Unstructured{}
	foreign.SetAPIVersion("networking.k8s.io/v1")
	foreign.SetKind("NetworkPolicy")
	foreign.SetNamespace(np.Namespace)
	foreign.SetName(np.Name)
	foreign.SetLabels(map[string]string{"argocd.argoproj.io/instance": "platform"})
	foreign.SetAnnotations(map[string]string{"fluxcd.io/ignore": "false", "team.example/owner": "platform"})
	if err := admin.Patch(ctx, foreign, client.Apply, client.FieldOwner("argocd-controller"), client.ForceOwnership); err != nil { //nolint:staticcheck // SA1019: a server-side apply of a whole object, as kubectl and GitOps tools send it; client.Client.Apply takes apply configurations
		t.Fatal(err)
	}
	// Make the operator reconcile this tenant again, rewriting its objects.
	tnt := getTenant(t, "gitops")
	tnt.Spec.DisplayName = "changed to force a pass"
	if err := admin.Update(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	waitForReady(t, "gitops")
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(np), np); err != nil {
			return err
		}
		if np.Labels["argocd.argoproj.io/instance"] != "platform" || np.Annotations["team.example/owner"] != "platform" {
			return fmt.Errorf("foreign metadata lost: labels %v annotations %v", np.Labels, np.Annotations)
		}
		if np.Labels[tenancyv1alpha1.LabelTenant] != "gitops" {
			return fmt.Errorf("the operator's own label is gone: %v", np.Labels)
		}
		return nil
	})
}
