package tenant_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers/tenant"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// waitGone waits until the Tenant is gone (its finalizer released).
func waitGone(t *testing.T, name string) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Tenant %s still there: %v", name, err)
		}
		return nil
	})
}

// ownedObjects lists every object of every kind in the operator's inventory that carries the
// tenant's label, wherever it is.
func ownedObjects(t *testing.T, name string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, k := range tenant.OwnedKinds() {
		gvk, err := admin.GroupVersionKindFor(k.Object)
		if err != nil {
			t.Fatal(err)
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := admin.List(context.Background(), list, client.MatchingLabels{tenancyv1alpha1.LabelTenant: name}); err != nil {
			if k.Optional && meta.IsNoMatchError(err) {
				continue
			}
			t.Fatal(err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	}
	return out
}

// Defect 1 and the retain transform: after a deletion under Retain, nothing the tenant keeps has an
// owner reference to the Tenant (a garbage collector would delete it), whatever its kind, in both
// database modes, and every kept object is labelled retained. Checked over the whole inventory.
func TestRetainLeavesNothingOwnedByTheTenant(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []tenancyv1alpha1.DatabaseMode{tenancyv1alpha1.DatabaseDedicated, tenancyv1alpha1.DatabaseShared} {
		name := "keep-" + strings.ToLower(string(mode))
		db := dedicated(true)
		if mode == tenancyv1alpha1.DatabaseShared {
			db = &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared}
		}
		tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: tenancyv1alpha1.TenantSpec{DeletionPolicy: tenancyv1alpha1.DeletionPolicyRetain, Database: db,
				Owners: []tenancyv1alpha1.Subject{owner("User", "kim")}}})
		if mode == tenancyv1alpha1.DatabaseDedicated {
			markClusterHealthy(t, "tenant-"+name, nil) // stand-in for CloudNativePG
			waitForReady(t, name)
		} else {
			testenv.Eventually(t, wait, func() error {
				return admin.Get(ctx, client.ObjectKey{Namespace: sharedDBNamespace, Name: "tenant-" + name + "-credentials"}, &corev1.Secret{})
			})
		}
		before := ownedObjects(t, name)
		if err := admin.Delete(ctx, tnt); err != nil {
			t.Fatal(err)
		}
		waitGone(t, name)
		after := ownedObjects(t, name)
		kinds := map[string]bool{}
		for _, obj := range after {
			kinds[obj.GetKind()] = true
			for _, ref := range obj.GetOwnerReferences() {
				if ref.Kind == "Tenant" {
					t.Errorf("%s: %s %s/%s still has an owner reference to the Tenant: %+v", mode, obj.GetKind(), obj.GetNamespace(), obj.GetName(), ref)
				}
			}
			if obj.GetLabels()[tenancyv1alpha1.LabelRetained] != "true" {
				t.Errorf("%s: %s %s/%s is kept without the retained label", mode, obj.GetKind(), obj.GetNamespace(), obj.GetName())
			}
			if obj.GetKind() == "RoleBinding" || obj.GetKind() == "ClusterRole" || obj.GetKind() == "ClusterRoleBinding" {
				t.Errorf("%s: access was kept: %s %s", mode, obj.GetKind(), obj.GetName())
			}
		}
		want := []string{"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy"}
		if mode == tenancyv1alpha1.DatabaseDedicated {
			want = append(want, "Cluster", "ScheduledBackup")
		} else {
			want = append(want, "Database", "DatabaseRole", "Secret") // the credentials, in both namespaces
		}
		for _, k := range want {
			if !kinds[k] {
				t.Errorf("%s: no %s was kept (before deletion: %d objects, after: %d)", mode, k, len(before), len(after))
			}
		}
	}
}

// Defect 2: removing access never waits on another area. With the database area invalid (a
// parameter the configuration does not allow), an SSO mapping removed from the spec loses its
// RoleBinding, and an owner removed loses access.
func TestRevocationDoesNotWaitOnAnInvalidArea(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "revoke"},
		Spec: tenancyv1alpha1.TenantSpec{
			Owners: []tenancyv1alpha1.Subject{owner("User", "ann"), owner("User", "bob")},
			SSO:    &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{{Group: "revoke-viewers", Role: "viewer"}}},
		}})
	waitForReady(t, "revoke")
	get(t, &rbacv1.RoleBinding{}, "tenant-revoke", "tenant-sso-viewer")

	// One edit: the database becomes invalid, an owner and the SSO mapping go.
	tnt := getTenant(t, "revoke")
	db := dedicated(false)
	db.DeletionPolicy = tenancyv1alpha1.DeletionPolicyRetain
	db.Parameters = map[string]string{"shared_preload_libraries": "evil"}
	tnt.Spec.Database = db
	tnt.Spec.Owners = []tenancyv1alpha1.Subject{owner("User", "ann")}
	tnt.Spec.SSO = nil
	if err := admin.Update(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, "revoke", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonInvalidSpec)
	testenv.Eventually(t, wait, func() error {
		err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant-revoke", Name: "tenant-sso-viewer"}, &rbacv1.RoleBinding{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the removed SSO mapping's RoleBinding is still there: %v", err)
		}
		return nil
	})
	testenv.Eventually(t, wait, func() error {
		if err := as(t, "bob").List(ctx, &corev1.PodList{}, client.InNamespace("tenant-revoke")); !apierrors.IsForbidden(err) {
			return fmt.Errorf("a removed owner can still list pods: %v", err)
		}
		return nil
	})
	if err := as(t, "ann").List(ctx, &corev1.PodList{}, client.InNamespace("tenant-revoke")); err != nil {
		t.Errorf("the remaining owner lost access: %v", err)
	}
}

// Defect 2, within the access area: an SSO mapping to a role the configuration does not allow is
// reported, and does not hold up the removal of a valid mapping dropped in the same edit.
func TestInvalidSSOMappingDoesNotHoldUpRevocation(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "revoke-sso"},
		Spec: tenancyv1alpha1.TenantSpec{
			SSO: &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{{Group: "revoke-sso-devs", Role: "developer"}}},
		}})
	waitForReady(t, "revoke-sso")
	get(t, &rbacv1.RoleBinding{}, "tenant-revoke-sso", "tenant-sso-developer")
	tnt := getTenant(t, "revoke-sso")
	tnt.Spec.SSO = &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{{Group: "revoke-sso-devs", Role: "superuser"}}}
	if err := admin.Update(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, "revoke-sso", tenancyv1alpha1.ConditionRBACReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonInvalidSpec)
	testenv.Eventually(t, wait, func() error {
		err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant-revoke-sso", Name: "tenant-sso-developer"}, &rbacv1.RoleBinding{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the dropped mapping's RoleBinding is still there: %v", err)
		}
		return nil
	})
}

// Defect 3: a pass that reached a verdict moves observedGeneration, an invalid spec included, so
// that kstatus (Flux, Argo CD) reports Failed at once instead of InProgress until a timeout.
func TestInvalidEditIsFailedForKstatus(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "ks-invalid"}})
	waitForReady(t, "ks-invalid")
	expectKstatus(t, "ks-invalid", status.CurrentStatus)
	tnt := getTenant(t, "ks-invalid")
	tnt.Spec.SSO = &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{{Group: "ks-invalid", Role: "superuser"}}}
	if err := admin.Update(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		got := getTenant(t, "ks-invalid")
		if got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
		}
		res, err := kstatusOf(t, "ks-invalid")
		if err != nil {
			return err
		}
		if res.Status != status.FailedStatus {
			return fmt.Errorf("kstatus is %s (%s), want Failed", res.Status, res.Message)
		}
		return nil
	})
}

// Defect 6: the finalizer is patched under an optimistic lock, so a finalizer another controller
// added after the operator read the Tenant is never dropped.
func TestFinalizerPatchKeepsAConcurrentFinalizer(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "fin"}})
	waitForReady(t, "fin")
	stale := getTenant(t, "fin")
	other := getTenant(t, "fin")
	other.Finalizers = append(other.Finalizers, "example.com/backup-export")
	if err := admin.Update(ctx, other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
		_ = admin.Patch(ctx, getTenant(t, "fin"), patch)
	})
	err := reconcileutil.RemoveFinalizer(ctx, admin, stale, tenancyv1alpha1.Finalizer)
	if !apierrors.IsConflict(err) {
		t.Errorf("removing the finalizer from a stale Tenant: got %v, want a conflict", err)
	}
	got := getTenant(t, "fin")
	if !containsString(got.Finalizers, "example.com/backup-export") || !containsString(got.Finalizers, tenancyv1alpha1.Finalizer) {
		t.Errorf("finalizers after a stale patch: %v", got.Finalizers)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Defect 4: a final backup that never completes (here: no CloudNativePG runs to take it) blocks
// the deletion with a condition that says what can be done, Stalled for kstatus; the explicit
// skip-final-backup annotation lets it go on, and is recorded in a Warning event.
func TestStuckFinalBackupBlocksUntilExplicitlySkipped(t *testing.T) {
	ctx := context.Background()
	db := dedicated(true)
	db.DeletionPolicy = tenancyv1alpha1.DeletionPolicyDelete
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "stuck"},
		Spec: tenancyv1alpha1.TenantSpec{DeletionPolicy: tenancyv1alpha1.DeletionPolicyRetain, Database: db}})
	markClusterHealthy(t, "tenant-stuck", nil) // stand-in for CloudNativePG
	waitForReady(t, "stuck")
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		got := getTenant(t, "stuck")
		c := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionReady)
		if c == nil || c.Reason != tenancyv1alpha1.ReasonFinalBackupRunning {
			return fmt.Errorf("Ready is %+v, want FinalBackupRunning", c)
		}
		return nil
	})
	// CloudNativePG would take the backup; nobody does. It fails:
	backup := &cnpgv1.Backup{}
	get(t, backup, "tenant-stuck", "postgres-final")
	backup.Status.Phase = cnpgv1.BackupPhaseFailed
	if err := admin.Status().Update(ctx, backup); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		got := getTenant(t, "stuck")
		c := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionReady)
		stalled := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionStalled)
		if c == nil || c.Reason != tenancyv1alpha1.ReasonFinalBackupFailed || !strings.Contains(c.Message, tenancyv1alpha1.AnnotationSkipFinalBackup) ||
			stalled == nil || stalled.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready is %+v, Stalled %+v; want FinalBackupFailed naming the override, Stalled", c, stalled)
		}
		return nil
	})
	get(t, &cnpgv1.Cluster{}, "tenant-stuck", "postgres") // not deleted without its backup

	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"object store decommissioned, data exported in CHG-1234"}}}`,
		tenancyv1alpha1.AnnotationSkipFinalBackup)))
	if err := admin.Patch(ctx, getTenant(t, "stuck"), patch); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "stuck")
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant-stuck", Name: "postgres"}, &cnpgv1.Cluster{}); !apierrors.IsNotFound(err) {
		// Without a garbage collector the object may linger with a deletion timestamp.
		c := &cnpgv1.Cluster{}
		if err == nil && admin.Get(ctx, client.ObjectKey{Namespace: "tenant-stuck", Name: "postgres"}, c) == nil && c.DeletionTimestamp.IsZero() {
			t.Errorf("the database was not deleted after the explicit skip")
		}
	}
	testenv.Eventually(t, wait, func() error {
		events, err := clientset.EventsV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=stuck"})
		if err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == tenancyv1alpha1.ReasonFinalBackupSkipped && strings.Contains(e.Note, "CHG-1234") && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no FinalBackupSkipped event naming the reason among %d events", len(events.Items))
	})
}

// Defect 4: a suspended Tenant still finishes deleting (its deletion policy runs: access revoked,
// data retained).
func TestSuspendedTenantFinishesDeleting(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "susp-del"},
		Spec: tenancyv1alpha1.TenantSpec{Owners: []tenancyv1alpha1.Subject{owner("User", "sue")}}})
	waitForReady(t, "susp-del")
	tnt := getTenant(t, "susp-del")
	tnt.Spec.Suspend = true
	if err := admin.Update(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, "susp-del", tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonSuspended)
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "susp-del")
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant-susp-del", Name: "tenant-owners"}, &rbacv1.RoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the owners' binding outlived the deleted Tenant: %v", err)
	}
	ns := &corev1.Namespace{}
	get(t, ns, "", "tenant-susp-del")
	if ns.Labels[tenancyv1alpha1.LabelRetained] != "true" {
		t.Errorf("the namespace was not retained: labels %v", ns.Labels)
	}
}
