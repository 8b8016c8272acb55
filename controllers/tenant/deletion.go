package tenant

import (
	"context"
	"errors"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/isolation"
)

// finalize carries out the deletion policy, then releases the Tenant.
//
// Under either policy access goes first: nobody keeps access to a tenant being deleted.
// Retain: the namespace and everything in it stay, fenced as before, labelled as retained, and with
// the Tenant's owner references removed so that no garbage collector can cascade the deletion.
// Delete: the namespace is deleted, and the Tenant is released only once it is gone.
// A namespace that is not the tenant's (a conflict) is never touched.
func (r *Reconciler) finalize(ctx context.Context, s *scope) error {
	t := s.tenant
	if !controllerutil.ContainsFinalizer(t, tenancyv1alpha1.Finalizer) {
		return nil
	}
	ns, name, state, err := r.findNamespace(ctx, t)
	if err != nil && state != nsConflict {
		s.deletion = failed(tenancyv1alpha1.ReasonDeleting, err.Error())
		return err
	}
	s.namespaceName = name

	if err := r.revokeAccess(ctx, t); err != nil {
		s.deletion = failed(tenancyv1alpha1.ReasonDeleting, "revoking access: "+err.Error())
		return phaseError("deletion", err)
	}

	if state == nsOwned {
		// The database's own policy first: a final backup must complete before anything is deleted.
		done, err := r.finalizeDatabase(ctx, s)
		if err != nil {
			s.deletion = failed(tenancyv1alpha1.ReasonDeleting, "database: "+err.Error())
			return phaseError("deletion", err)
		}
		if !done {
			return nil // the Backup's status change brings the Tenant back here
		}
		if err := r.finalizeSecrets(ctx, s); err != nil {
			return phaseError("deletion", err)
		}
	}

	switch {
	case t.Spec.DeletionPolicy == tenancyv1alpha1.DeletionPolicyDelete && (state == nsOwned || state == nsTerminating):
		s.deletion = failed(tenancyv1alpha1.ReasonDeletingNamespace, fmt.Sprintf("waiting for namespace %s to be deleted", name))
		if state == nsOwned {
			uid := ns.UID
			if _, err := r.Applier.Delete(ctx, ns, client.Preconditions{UID: &uid}); err != nil {
				return phaseError("deletion", err)
			}
		}
		return nil // the namespace's deletion event brings the Tenant back here
	case state == nsOwned:
		s.deletion = failed(tenancyv1alpha1.ReasonRetaining, fmt.Sprintf("retaining namespace %s", name))
		objs := append([]client.Object{isolation.Namespace(t, name, true)}, r.isolationObjects(s, true)...)
		if err := r.applyAll(ctx, s, objs); err != nil {
			return phaseError("deletion", err)
		}
	}

	patch := client.MergeFrom(t.DeepCopy())
	controllerutil.RemoveFinalizer(t, tenancyv1alpha1.Finalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, t, patch))
}

// revokeAccess deletes every binding and role the operator made for the tenant.
func (r *Reconciler) revokeAccess(ctx context.Context, t *tenancyv1alpha1.Tenant) error {
	// Every binding of the tenant, the RoleBinding controller's included: a deleted Tenant grants
	// nothing. That controller does not grant again without a live Tenant.
	sel := labels.SelectorFromSet(labels.Set{tenancyv1alpha1.LabelTenant: t.Name})
	var errs []error
	for _, list := range []client.ObjectList{&rbacv1.RoleBindingList{}, &rbacv1.ClusterRoleBindingList{}, &rbacv1.ClusterRoleList{}} {
		if _, err := r.Applier.Prune(ctx, list, sel, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
