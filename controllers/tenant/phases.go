package tenant

import (
	"context"
	"errors"
	"fmt"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/access"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/builders/isolation"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
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
	if err := r.Client.List(ctx, owned, client.MatchingLabels{tenancyv1alpha1.LabelTenant: t.Name}); err != nil {
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
	if _, err := r.Applier.Apply(ctx, isolation.Namespace(t, name, false)); err != nil {
		s.namespace = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	s.namespace = ready(fmt.Sprintf("namespace %s is the tenant's", name))
	return nil
}

// isolationObjects are the fence: quota, limits and network policies. A nil builder result is an
// object that must not exist; the prune step removes it.
func (r *Reconciler) isolationObjects(s *scope, retained bool) []client.Object {
	t, ns := s.tenant, s.namespaceName
	var objs []client.Object
	if q := isolation.ResourceQuota(t, ns, r.Config, retained); q != nil {
		objs = append(objs, q)
	}
	if l := isolation.LimitRange(t, ns, r.Config, retained); l != nil {
		objs = append(objs, l)
	}
	for _, p := range isolation.NetworkPolicies(t, ns, r.Config, retained) {
		objs = append(objs, p)
	}
	return objs
}

func (r *Reconciler) reconcileIsolation(ctx context.Context, s *scope) error {
	if err := r.applyAll(ctx, s, r.isolationObjects(s, false)); err != nil {
		s.isolation = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	s.isolation = ready("network policies, quota and limits are in force")
	return nil
}

func (r *Reconciler) accessObjects(s *scope) []client.Object {
	t := s.tenant
	var objs []client.Object
	for _, rb := range access.RoleBindings(t, s.namespaceName, r.Config, false) {
		objs = append(objs, rb)
	}
	if cr := access.MemberClusterRole(t, false); cr != nil {
		objs = append(objs, cr)
	}
	if crb := access.MemberClusterRoleBinding(t, false); crb != nil {
		objs = append(objs, crb)
	}
	return objs
}

func (r *Reconciler) reconcileAccess(ctx context.Context, s *scope) error {
	if msg, ok := access.Validate(s.tenant, r.Config); !ok {
		// Not retried in a hot loop: the spec has to change first.
		s.access = failed(tenancyv1alpha1.ReasonInvalidSpec, msg)
		s.invalid = true
		return nil
	}
	if err := r.applyAll(ctx, s, r.accessObjects(s)); err != nil {
		s.access = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	if len(s.tenant.Spec.Owners) == 0 && len(s.tenant.Spec.SSO.GetGroups()) == 0 {
		s.access = readyWithReason(tenancyv1alpha1.ReasonNoSubjects, "the tenant has no owners or SSO groups: nobody has been given access")
		return nil
	}
	s.access = ready("owners and SSO groups are bound to their tenant roles")
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
	s.markKept(obj)
	return r.Applier.Apply(ctx, obj)
}

// prune removes what the tenant no longer wants: a binding for an owner list that became empty, an
// SSO role no group maps to any more, a LimitRange whose limits were all removed. It runs only after
// every phase succeeded. Namespaces are never pruned.
func (r *Reconciler) prune(ctx context.Context, s *scope) error {
	if s.invalid {
		return nil
	}
	sel := ownSelector(s.tenant)
	var errs []error
	objectStores := &unstructured.UnstructuredList{}
	objectStores.SetGroupVersionKind(database.ObjectStoreListGVK)
	// Never pruned: namespaces, database Clusters and Databases, and credentials Secrets. Losing a
	// customer's data must take an explicit deletion, never a spec edit.
	for _, list := range []client.ObjectList{
		&corev1.ResourceQuotaList{}, &corev1.LimitRangeList{}, &networkingv1.NetworkPolicyList{},
		&rbacv1.RoleBindingList{}, &rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{},
		&cnpgv1.ScheduledBackupList{}, objectStores, &corev1.ServiceAccountList{},
		&externalsecrets.SecretStoreList{}, &externalsecrets.ExternalSecretList{}, &externalsecrets.PushSecretList{},
	} {
		if _, err := r.Applier.Prune(ctx, list, sel, s.kept(list)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownSelector selects what the Tenant controller made for t: the tenant label, without the
// RoleBinding controller's bindings.
func ownSelector(t *tenancyv1alpha1.Tenant) labels.Selector {
	tenant, _ := labels.NewRequirement(tenancyv1alpha1.LabelTenant, selection.Equals, []string{t.Name})
	notGrant, _ := labels.NewRequirement(tenancyv1alpha1.LabelRoleBinding, selection.DoesNotExist, nil)
	return labels.NewSelector().Add(*tenant, *notGrant)
}
