package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
)

// finalize carries out the deletion policy, then releases the Tenant. Every step is bounded: what
// blocks it is reported in the Ready condition with what the platform engineer can do, and nothing
// depends on the operator configuration still describing the tenant (objects are found by label).
//
//  1. Access goes first, under either policy: every binding and role of the tenant, the
//     RoleBinding controller's grants included.
//  2. The database's policy: under Delete, a final backup (when configured) and then the database
//     objects (finalizeDatabase).
//  3. Vault, keyed on the tenant and not on its namespace: under Delete, its policies and roles go
//     (and its data with purgeOnDelete), even when the namespace is already gone.
//  4. The namespace's policy: under Delete it is deleted, and the Tenant waits until it is gone.
//  5. The retain transform, over everything of the tenant that is left (retain.go).
//
// A namespace that is not the tenant's (a conflict) is never touched.
func (r *Reconciler) finalize(ctx context.Context, s *scope) (ctrl.Result, error) {
	t := s.tenant
	if !controllerutil.ContainsFinalizer(t, tenancyv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	ns, name, state, err := r.findNamespace(ctx, t)
	if err != nil && state != nsConflict {
		s.deletion = failed(tenancyv1alpha1.ReasonDeleting, err.Error())
		return ctrl.Result{}, err
	}
	if state == nsOwned || state == nsTerminating {
		s.namespaceName = name
	}

	if err := r.revokeAccess(ctx, s); err != nil {
		s.deletion = failed(tenancyv1alpha1.ReasonDeleting, "revoking access: "+err.Error())
		return ctrl.Result{}, phaseError("deletion", err)
	}
	done, err := r.finalizeDatabase(ctx, s)
	if err != nil {
		s.deletion = failed(tenancyv1alpha1.ReasonDeleting, "database: "+err.Error())
		return ctrl.Result{}, phaseError("deletion", err)
	}
	if !done {
		// The Backup's status change brings the Tenant back; requeueAfter flips the condition to
		// "stuck" when the backup takes too long.
		return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
	}
	if err := r.finalizeSecrets(ctx, s); err != nil {
		return ctrl.Result{}, phaseError("deletion", err)
	}

	if t.Spec.DeletionPolicy == tenancyv1alpha1.DeletionPolicyDelete && (state == nsOwned || state == nsTerminating) {
		s.deletion = failed(tenancyv1alpha1.ReasonDeletingNamespace, fmt.Sprintf("waiting for namespace %s to be deleted", name))
		if state == nsOwned {
			uid := ns.UID
			if _, err := r.Applier.Delete(ctx, ns, client.Preconditions{UID: &uid}); err != nil {
				return ctrl.Result{}, phaseError("deletion", err)
			}
		}
		return ctrl.Result{}, nil // the namespace's deletion event brings the Tenant back here
	}
	s.deletion = failed(tenancyv1alpha1.ReasonRetaining, "retaining what the deletion policy keeps")
	if err := r.retainAll(ctx, s); err != nil {
		return ctrl.Result{}, phaseError("deletion", err)
	}
	if err := reconcileutil.RemoveFinalizer(ctx, r.Client, t, tenancyv1alpha1.Finalizer); err != nil {
		return ctrl.Result{}, err
	}
	r.written.Wrote(t) // a Tenant that other finalizers keep; one that is gone is forgotten
	return ctrl.Result{}, nil
}

// revokeAccess deletes every binding and role of the tenant (the inventory's access kinds), the
// RoleBinding controller's grants included: a deleted Tenant grants nothing, and that controller
// does not grant again without a live Tenant.
func (r *Reconciler) revokeAccess(ctx context.Context, s *scope) error {
	return r.eachOwned(ctx, s, func(o owned) bool { return o.area == areaAccess }, func(_ owned, obj client.Object) error {
		_, err := r.Applier.Delete(ctx, obj)
		return err
	})
}

// retainAll applies the retain transform to every object of the tenant that is still there and that
// the deletion policy keeps: the namespace and what is in it, the database's objects on the shared
// cluster, the credentials. Access was revoked before; an object being deleted is left to its
// deletion.
func (r *Reconciler) retainAll(ctx context.Context, s *scope) error {
	deleteDatabase := s.tenant.Spec.Database != nil && effectiveDatabasePolicy(s.tenant) == tenancyv1alpha1.DeletionPolicyDelete
	keep := func(o owned) bool {
		// Under the database's Delete policy, what it left on the shared cluster (the credentials
		// copy) keeps its owner reference, for the garbage collector to delete with the Tenant.
		return o.area != areaAccess && !(deleteDatabase && o.area == areaDatabase && o.where == outsideTenantNamespace)
	}
	return r.eachOwned(ctx, s, keep, func(o owned, obj client.Object) error {
		if obj.GetDeletionTimestamp() != nil {
			return nil
		}
		before := obj.DeepCopyObject().(client.Object)
		if !retain(obj, s.tenant) {
			return nil
		}
		patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Patch(ctx, obj, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("retain %s %s: %w", o.gvk.Kind, client.ObjectKeyFromObject(obj), err)
		}
		return nil
	})
}

// eachOwned calls fn for every object of the tenant, of the inventory kinds that match, wherever
// the inventory places them; it keeps going past failures and joins their errors.
func (r *Reconciler) eachOwned(ctx context.Context, s *scope, match func(owned) bool, fn func(owned, client.Object) error) error {
	var errs []error
	for _, o := range inventory {
		if !match(o) {
			continue
		}
		objs, err := r.listOwned(ctx, s.tenant, s.namespaceName, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, obj := range objs {
			if err := fn(o, obj); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// retain is the retain transform: obj loses its owner references to the Tenant t (or a garbage
// collector would cascade the Tenant's deletion into it) and gains the retained label, so that a
// Tenant created later with the same name adopts it. It reports whether obj changed. It is the
// only place that knows what retaining means; the builders describe the desired state only.
func retain(obj client.Object, t *tenancyv1alpha1.Tenant) bool {
	changed := false
	refs := obj.GetOwnerReferences()
	kept := make([]metav1.OwnerReference, 0, len(refs))
	for _, ref := range refs {
		if isTenantRef(ref) && ref.Name == t.Name {
			changed = true
			continue
		}
		kept = append(kept, ref)
	}
	if changed {
		obj.SetOwnerReferences(kept)
	}
	labels := obj.GetLabels()
	if labels[tenancyv1alpha1.LabelRetained] != "true" {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[tenancyv1alpha1.LabelRetained] = "true"
		obj.SetLabels(labels)
		changed = true
	}
	return changed
}

// isTenantRef says whether an owner reference points at a Tenant.
func isTenantRef(ref metav1.OwnerReference) bool {
	return ref.Kind == "Tenant" && ref.APIVersion == tenancyv1alpha1.GroupVersion.String()
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// warn records a Warning event on the Tenant.
func (r *Reconciler) warn(t *tenancyv1alpha1.Tenant, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(t, nil, corev1.EventTypeWarning, reason, "Delete", format, args...)
	}
}
