package webhook_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// tenantWebhook is the name of the Tenant webhook in config/webhook/manifests.yaml.
const tenantWebhook = "tenants.tenancy.tenantctl.io"

func vaultTenant(name, vaultPath string) *tenancyv1alpha1.Tenant {
	return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tenancyv1alpha1.TenantSpec{Secrets: &tenancyv1alpha1.SecretsSpec{VaultPath: vaultPath}}}
}

// With the webhook served, a Tenant whose Vault path overlaps a working tenant's is refused at
// admission, naming the field and the tenant, and the working tenant is left exactly as it was,
// also after a reconcile of it.
func TestOverlappingTenantIsRefusedAtAdmission(t *testing.T) {
	ctx := context.Background()
	first := createReady(t, vaultTenant("admission-first", "legacy/admission"))
	before := snapshot(t, first)

	err := admin.Create(ctx, vaultTenant("admission-second", "legacy/admission/inner"))
	if !apierrors.IsForbidden(err) {
		t.Fatalf("creating an overlapping Tenant: %v, want it refused at admission", err)
	}
	for _, f := range []string{tenantWebhook, "spec.secrets.vaultPath", "tenant admission-first"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("refusal %q does not name %q", err, f)
		}
	}
	if err := admin.Get(ctx, client.ObjectKey{Name: "admission-second"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused Tenant: %v, want not found", err)
	}

	// A pass over the first tenant now (a new generation of it) changes nothing it owns.
	patch := client.MergeFrom(first.DeepCopy())
	first.Spec.DisplayName = "Admission First"
	if err := admin.Patch(ctx, first, patch); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, first.Name, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonReady)
	if after := snapshot(t, first); after != before {
		t.Errorf("the first tenant changed:\nbefore %s\nafter  %s", before, after)
	}
}

// Without the webhook (the operator down: failurePolicy Ignore admits; or two creates racing), an
// overlapping newcomer is admitted, and the reconciler refuses only the newcomer, naming the tenant
// that was there first, which keeps working through passes of its own.
func TestOverlapPastAdmissionRefusesOnlyTheNewcomer(t *testing.T) {
	ctx := context.Background()
	first := createReady(t, vaultTenant("race-first", "legacy/race"))
	bypassTenantWebhook(t, "legacy/race")

	second := vaultTenant("race-second", "legacy/race")
	if err := admin.Create(ctx, second); err != nil {
		t.Fatalf("with the webhook unreachable, creating an overlapping Tenant: %v, want it admitted (failurePolicy Ignore)", err)
	}
	got := waitForCondition(t, second.Name, tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonInvalidSpec)
	if c := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionSecretsReady); !strings.Contains(c.Message, "tenant race-first") {
		t.Errorf("the newcomer's SecretsReady message %q does not name the tenant that was there first", c.Message)
	}

	// A new generation of the first tenant makes it reconcile, now that the newcomer exists.
	patch := client.MergeFrom(first.DeepCopy())
	first.Spec.DisplayName = "Race First"
	if err := admin.Patch(ctx, first, patch); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, first.Name, tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonReady)
	waitForCondition(t, first.Name, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonReady)
}

// createReady creates a Vault tenant and waits until it is Ready. External Secrets Operator does not
// run here: its SecretStore is reported Ready by the test, as ESO would once it had validated it.
func createReady(t *testing.T, tnt *tenancyv1alpha1.Tenant) *tenancyv1alpha1.Tenant {
	t.Helper()
	ctx := context.Background()
	if err := admin.Create(ctx, tnt); err != nil {
		t.Fatalf("create Tenant %s: %v", tnt.Name, err)
	}
	store := &externalsecrets.SecretStore{}
	testenv.Eventually(t, wait, func() error {
		got := &tenancyv1alpha1.Tenant{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(tnt), got); err != nil {
			return err
		}
		if got.Status.Namespace == "" {
			return fmt.Errorf("tenant %s has no namespace yet", tnt.Name)
		}
		return admin.Get(ctx, client.ObjectKey{Namespace: got.Status.Namespace, Name: secrets.ReaderStore}, store)
	})
	patch := client.MergeFrom(store.DeepCopy())
	store.Status.Conditions = []externalsecrets.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Valid", Message: "store validated"}}
	if err := admin.Status().Patch(ctx, store, patch); err != nil {
		t.Fatalf("report SecretStore %s/%s Ready: %v", store.Namespace, store.Name, err)
	}
	return waitForCondition(t, tnt.Name, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonReady)
}

// waitForCondition waits until the Tenant's condition has the status and reason, for its current
// generation.
func waitForCondition(t *testing.T, name, typ string, status metav1.ConditionStatus, reason string) *tenancyv1alpha1.Tenant {
	t.Helper()
	var got *tenancyv1alpha1.Tenant
	testenv.Eventually(t, wait, func() error {
		got = &tenancyv1alpha1.Tenant{}
		if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != reason || c.ObservedGeneration != got.Generation {
			return fmt.Errorf("%s of %s is %+v; want %s/%s at generation %d", typ, name, c, status, reason, got.Generation)
		}
		return nil
	})
	return got
}

// snapshot describes a tenant's conditions and the resourceVersions of what it owns in Kubernetes.
func snapshot(t *testing.T, tnt *tenancyv1alpha1.Tenant) string {
	t.Helper()
	ctx := context.Background()
	got := &tenancyv1alpha1.Tenant{}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(tnt), got); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range got.Status.Conditions {
		fmt.Fprintf(&b, "%s=%s/%s %q since %s; ", c.Type, c.Status, c.Reason, c.Message, c.LastTransitionTime.UTC())
	}
	ns := got.Status.Namespace
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secrets.ReaderServiceAccount}},
		&externalsecrets.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secrets.ReaderStore}},
	}
	for _, o := range objs {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%T %s rv %s; ", o, o.GetName(), o.GetResourceVersion())
	}
	return b.String()
}

// bypassTenantWebhook points the installed Tenant webhook at an address nothing listens on, as when
// the operator is down, until the test ends; then restores it and waits until it refuses again.
// heldPath is a Vault path an existing tenant holds, which the probes overlap.
// Without a Tenant webhook installed (the code before it existed) there is nothing to bypass.
func bypassTenantWebhook(t *testing.T, heldPath string) {
	t.Helper()
	ctx := context.Background()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := admin.Get(ctx, client.ObjectKey{Name: "validating-webhook-configuration"}, vwc); err != nil {
		t.Fatal(err)
	}
	i := -1
	for j := range vwc.Webhooks {
		if vwc.Webhooks[j].Name == tenantWebhook {
			i = j
		}
	}
	if i < 0 {
		t.Logf("no %s webhook installed: nothing to bypass", tenantWebhook)
		return
	}
	dead, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	original := vwc.Webhooks[i].ClientConfig.URL
	setURL := func(url *string) {
		t.Helper()
		patch := client.MergeFromWithOptions(vwc.DeepCopy(), client.MergeFromWithOptimisticLock{})
		vwc.Webhooks[i].ClientConfig.URL = url
		if err := admin.Patch(ctx, vwc, patch); err != nil {
			t.Fatal(err)
		}
	}
	// The apiserver reloads webhook configurations asynchronously: a dry-run create of a Tenant
	// overlapping heldPath tells when the change is in force.
	probe := func(wantRefused bool) {
		t.Helper()
		testenv.Eventually(t, wait, func() error {
			err := admin.Create(ctx, vaultTenant("bypass-probe", heldPath), client.DryRunAll)
			if refused := apierrors.IsForbidden(err); refused != wantRefused {
				return fmt.Errorf("dry-run create of an overlapping Tenant: %v", err)
			}
			return nil
		})
	}
	setURL(ptr.To("https://" + dead + "/validate"))
	probe(false)
	t.Cleanup(func() {
		setURL(original)
		probe(true)
	})
}

// A DenyAll Tenant with a database, on a platform whose configuration allows no egress to the API
// server and the object store, is admitted with a warning that says why its database will not
// become ready (kubectl prints it); the same Tenant with DenyIngress gets none.
func TestDenyAllDatabaseWithoutPlatformEgressIsWarnedAtAdmission(t *testing.T) {
	warnings := &collectWarnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = warnings
	c, err := client.New(cfg, client.Options{Scheme: admin.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	tnt := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "admission-fenced-db"}, Spec: tenancyv1alpha1.TenantSpec{
		Isolation: tenancyv1alpha1.IsolationSpec{NetworkPolicy: tenancyv1alpha1.NetworkPolicyDenyAll},
		Database:  &tenancyv1alpha1.DatabaseSpec{Storage: &tenancyv1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}},
	}}
	if err := c.Create(context.Background(), tnt.DeepCopy(), client.DryRunAll); err != nil {
		t.Fatalf("a DenyAll Tenant with a database is refused: %v, want it admitted with a warning", err)
	}
	if got := strings.Join(warnings.messages, "\n"); !strings.Contains(got, "spec.isolation.networkPolicy") || !strings.Contains(got, "platformEgress") {
		t.Errorf("warnings %q, want one naming spec.isolation.networkPolicy and platformEgress", got)
	}

	warnings.messages = nil
	tnt.Spec.Isolation.NetworkPolicy = tenancyv1alpha1.NetworkPolicyDenyIngress
	if err := c.Create(context.Background(), tnt, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if len(warnings.messages) > 0 {
		t.Errorf("a DenyIngress Tenant was warned: %q", warnings.messages)
	}
}

type collectWarnings struct{ messages []string }

func (w *collectWarnings) HandleWarningHeader(_ int, _ string, text string) {
	w.messages = append(w.messages, text)
}
