package tenant

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/access"
	"github.com/tenantctl/tenant-operator/internal/builders/isolation"
)

// namespaceState is what the namespace phase found.
type namespaceState int

const (
	nsUnknown namespaceState = iota
	nsOwned
	nsAbsent
	nsConflict
	nsTerminating
)

// findNamespace re-observes which namespace is the tenant's. A namespace that carries the tenant's
// label is it, whatever the prefix is today (so changing the configured prefix never moves a
// tenant). Otherwise the desired name is looked up uncached: if it exists without the tenant's
// label it belongs to someone else and is never adopted.
func (r *Reconciler) findNamespace(ctx context.Context, t *tenancyv1alpha1.Tenant) (*corev1.Namespace, string, namespaceState, error) {
	owned := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, owned, r.byTenant(t.Name, true)); err != nil {
		return nil, "", nsUnknown, fmt.Errorf("list the tenant's namespaces: %w", err)
	}
	desired := isolation.NamespaceName(t, r.Config)
	switch len(owned.Items) {
	case 0:
	case 1:
		ns := &owned.Items[0]
		if !ns.DeletionTimestamp.IsZero() {
			return ns, ns.Name, nsTerminating, nil
		}
		return ns, ns.Name, nsOwned, nil
	default:
		return nil, desired, nsConflict, fmt.Errorf("%d namespaces carry the label %s=%s", len(owned.Items), tenancyv1alpha1.LabelTenant, t.Name)
	}
	existing := &corev1.Namespace{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Name: desired}, existing); {
	case apierrors.IsNotFound(err):
		return nil, desired, nsAbsent, nil
	case err != nil:
		return nil, desired, nsUnknown, fmt.Errorf("get namespace %s: %w", desired, err)
	}
	return existing, desired, nsConflict, nil
}

func (r *Reconciler) reconcileNamespace(ctx context.Context, s *scope) error {
	t := s.tenant
	ns, name, state, err := r.findNamespace(ctx, t)
	s.namespaceName = name
	switch {
	case err != nil && state == nsConflict:
		s.namespace = failed(tenancyv1alpha1.ReasonNamespaceConflict, err.Error())
		return nil
	case err != nil:
		s.namespace = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	case state == nsConflict:
		owner := ns.Labels[tenancyv1alpha1.LabelTenant]
		msg := fmt.Sprintf("namespace %s exists and is not this tenant's; the operator never adopts it and touches nothing in it", name)
		if owner != "" {
			msg = fmt.Sprintf("namespace %s belongs to tenant %s; the operator touches nothing in it", name, owner)
		}
		s.namespace = failed(tenancyv1alpha1.ReasonNamespaceConflict, msg)
		return nil
	case state == nsTerminating:
		s.namespace = failed(tenancyv1alpha1.ReasonNamespaceTerminating, fmt.Sprintf("namespace %s is being deleted", name))
		return nil
	}
	if _, err := r.Applier.Apply(ctx, isolation.Namespace(t, name)); err != nil {
		s.namespace = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	s.namespace = ready(fmt.Sprintf("namespace %s is the tenant's", name))
	return nil
}

// isolationObjects are the fence: quota, limits and network policies. A nil builder result is an
// object that must not exist; the area's prune removes it.
func (r *Reconciler) isolationObjects(s *scope) []client.Object {
	t, ns := s.tenant, s.namespaceName
	var objs []client.Object
	if q := isolation.ResourceQuota(t, ns, r.Config); q != nil {
		objs = append(objs, q)
	}
	if l := isolation.LimitRange(t, ns, r.Config); l != nil {
		objs = append(objs, l)
	}
	for _, p := range isolation.NetworkPolicies(t, ns, r.Config) {
		objs = append(objs, p)
	}
	return objs
}

func (r *Reconciler) reconcileIsolation(ctx context.Context, s *scope) error {
	if err := r.applyArea(ctx, s, areaIsolation, r.isolationObjects(s)); err != nil {
		s.isolation = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	s.isolation = ready("network policies, quota and limits are in force")
	return nil
}

func (r *Reconciler) accessObjects(s *scope) []client.Object {
	t := s.tenant
	var objs []client.Object
	for _, rb := range access.RoleBindings(t, s.namespaceName, r.Config) {
		objs = append(objs, rb)
	}
	objs = append(objs, access.MemberClusterRole(t))
	if crb := access.MemberClusterRoleBinding(t, r.Config); crb != nil {
		objs = append(objs, crb)
	}
	return objs
}

// reconcileAccess binds the tenant's identities and removes every binding the spec no longer asks
// for. A part of the spec the configuration cannot honour (an SSO group mapped to a role that is not
// allowed) binds nothing and is reported, while the rest is applied and pruned as usual: removing
// someone's access never waits for the spec to become valid.
func (r *Reconciler) reconcileAccess(ctx context.Context, s *scope) error {
	if err := r.applyArea(ctx, s, areaAccess, r.accessObjects(s)); err != nil {
		s.access = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	if msg, ok := access.Validate(s.tenant, r.Config); !ok {
		// Not retried in a hot loop: the spec has to change first.
		s.access = failed(tenancyv1alpha1.ReasonInvalidSpec, msg)
		return nil
	}
	if len(s.tenant.Spec.Owners) == 0 && len(s.tenant.Spec.SSO.GetGroups()) == 0 {
		s.access = readyWithReason(tenancyv1alpha1.ReasonNoSubjects, "the tenant has no owners or SSO groups: nobody has been given access")
		return nil
	}
	s.access = ready("owners and SSO groups are bound to their tenant roles")
	return nil
}

// applyArea applies an area's objects, keeping going past failures, and then, only if every apply
// succeeded, prunes what the area made earlier and no longer wants. Each area prunes on its own: a
// failing or invalid area never holds up another's pruning.
func (r *Reconciler) applyArea(ctx context.Context, s *scope, a area, objs []client.Object) error {
	if err := r.applyAll(ctx, s, objs); err != nil {
		return err
	}
	if err := r.prune(ctx, s, a); err != nil {
		return phaseError("prune", err)
	}
	return nil
}

// applyAll applies every object, keeps going past failures, and records what it wrote so that
// pruning keeps it.
func (r *Reconciler) applyAll(ctx context.Context, s *scope, objs []client.Object) error {
	var errs []error
	for _, obj := range objs {
		if _, err := r.applyOne(ctx, s, obj); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Reconciler) applyOne(ctx context.Context, s *scope, obj client.Object) (bool, error) {
	if err := s.markKept(r.Client.Scheme(), obj); err != nil {
		return false, err
	}
	return r.Applier.Apply(ctx, obj)
}

// prune removes what area a made for the tenant and no longer wants: a binding for an owner list
// that became empty, an SSO role no group maps to any more, a LimitRange whose limits were all
// removed. Only kinds the inventory marks prunable are considered; what holds data never is.
func (r *Reconciler) prune(ctx context.Context, s *scope, a area) error {
	return r.eachOwned(ctx, s, func(o owned) bool { return o.area == a && o.prune }, func(o owned, obj client.Object) error {
		if s.kept(o.gvk, obj) || obj.GetDeletionTimestamp() != nil || obj.GetLabels()[tenancyv1alpha1.LabelRoleBinding] != "" {
			return nil // the RoleBinding controller's grants are that controller's to remove
		}
		_, err := r.Applier.Delete(ctx, obj)
		return err
	})
}

// byTenant selects a tenant's objects: by the cache's tenant index for kinds listed across the
// cluster (an unindexed label selector would read every cached object of the kind, for each tenant
// on each pass: a cost growing with the square of the tenants), by the label otherwise.
func (r *Reconciler) byTenant(name string, clusterWide bool) client.ListOption {
	if clusterWide && r.indexed {
		return client.MatchingFields{TenantIndex: name}
	}
	return client.MatchingLabels{tenancyv1alpha1.LabelTenant: name}
}

// listOwned lists, from the cache, the objects of one inventory entry that carry the tenant's label,
// where that entry places them. An optional kind whose CRD is absent has none.
func (r *Reconciler) listOwned(ctx context.Context, t *tenancyv1alpha1.Tenant, namespace string, o owned) ([]client.Object, error) {
	list := o.newList(r.Client.Scheme())
	opts := []client.ListOption{r.byTenant(t.Name, o.where != inTenantNamespace)}
	if o.where == inTenantNamespace {
		if namespace == "" {
			return nil, nil
		}
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		if o.optional && meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", o.gvk.Kind, err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(items))
	for _, item := range items {
		obj, ok := item.(client.Object)
		if !ok || (o.where == outsideTenantNamespace && obj.GetNamespace() == namespace) {
			continue
		}
		out = append(out, obj)
	}
	return out, nil
}
