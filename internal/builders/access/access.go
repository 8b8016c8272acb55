// Package access builds who may do what in a tenant: the owners' binding to the admin role, the
// SSO groups' bindings to their mapped roles, and a per-tenant ClusterRole that lets the tenant's
// members get and watch their own Tenant object and nothing else cluster-wide.
package access

import (
	"fmt"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders"
	"github.com/tenantctl/tenant-operator/internal/config"
)

// Names of the access objects.
const (
	OwnersBindingName = "tenant-owners"
	ssoBindingPrefix  = "tenant-sso-"
	// AdminRole is the tenant role owners are bound to.
	AdminRole = "admin"
)

// MemberRoleName names the per-tenant ClusterRole (and its binding) that lets members read their
// own Tenant.
func MemberRoleName(t *tenancyv1alpha1.Tenant) string { return "tenantctl:tenant:" + t.Name }

// Validate reports a spec that passed admission but that this operator's configuration cannot
// honour: an SSO mapping to a role the configuration does not allow, or no admin role to bind
// owners to. It is a pure policy function: (message, ok).
func Validate(t *tenancyv1alpha1.Tenant, cfg config.Config) (string, bool) {
	if len(t.Spec.Owners) > 0 {
		if _, ok := cfg.Roles[AdminRole]; !ok {
			return "the operator configuration allows no admin role to bind owners to", false
		}
	}
	for i, g := range t.Spec.SSO.GetGroups() {
		if _, ok := cfg.Roles[g.Role]; !ok {
			return fmt.Sprintf("spec.sso.groups[%d].role: %q is not a tenant role this operator allows (%s)", i, g.Role, allowed(cfg)), false
		}
	}
	return "", true
}

func allowed(cfg config.Config) string {
	roles := make([]string, 0, len(cfg.Roles))
	for r := range cfg.Roles {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return fmt.Sprint(roles)
}

// RoleBindings are the namespace's bindings: owners to the admin role, and one binding per role
// the SSO groups map to, for roles the configuration allows only (an SSO mapping to any other role
// binds nothing, and Validate reports it).
func RoleBindings(t *tenancyv1alpha1.Tenant, namespace string, cfg config.Config) []*rbacv1.RoleBinding {
	var out []*rbacv1.RoleBinding
	if admin, ok := cfg.Roles[AdminRole]; ok && len(t.Spec.Owners) > 0 {
		out = append(out, roleBinding(t, namespace, OwnersBindingName, admin, subjects(t.Spec.Owners)))
	}
	byRole := map[string][]rbacv1.Subject{}
	for _, g := range t.Spec.SSO.GetGroups() {
		if _, ok := cfg.Roles[g.Role]; !ok {
			continue
		}
		byRole[g.Role] = append(byRole[g.Role], rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g.Group})
	}
	roles := make([]string, 0, len(byRole))
	for r := range byRole {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		out = append(out, roleBinding(t, namespace, ssoBindingPrefix+r, cfg.Roles[r], byRole[r]))
	}
	return out
}

func roleBinding(t *tenancyv1alpha1.Tenant, namespace, name, clusterRole string, subs []rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: builders.ObjectMeta(t, namespace, name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   subs,
	}
}

// MemberClusterRole lets its subjects get and watch this one Tenant.
func MemberClusterRole(t *tenancyv1alpha1.Tenant) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: builders.ObjectMeta(t, "", MemberRoleName(t)),
		Rules: []rbacv1.PolicyRule{{
			APIGroups:     []string{tenancyv1alpha1.GroupVersion.Group},
			Resources:     []string{"tenants"},
			ResourceNames: []string{t.Name},
			Verbs:         []string{"get", "watch"},
		}},
	}
}

// MemberClusterRoleBinding binds the tenant's owners and SSO groups (those RoleBindings binds) to
// MemberClusterRole. It returns nil when there is nobody to bind.
func MemberClusterRoleBinding(t *tenancyv1alpha1.Tenant, cfg config.Config) *rbacv1.ClusterRoleBinding {
	var subs []rbacv1.Subject
	if _, ok := cfg.Roles[AdminRole]; ok {
		subs = subjects(t.Spec.Owners)
	}
	seen := map[rbacv1.Subject]bool{}
	for _, s := range subs {
		seen[s] = true
	}
	for _, g := range t.Spec.SSO.GetGroups() {
		if _, ok := cfg.Roles[g.Role]; !ok {
			continue
		}
		s := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g.Group}
		if !seen[s] {
			seen[s] = true
			subs = append(subs, s)
		}
	}
	if len(subs) == 0 {
		return nil
	}
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: builders.ObjectMeta(t, "", MemberRoleName(t)),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: MemberRoleName(t)},
		Subjects:   subs,
	}
}

// subjects converts tenancy subjects into RBAC subjects.
func subjects(in []tenancyv1alpha1.Subject) []rbacv1.Subject {
	out := make([]rbacv1.Subject, 0, len(in))
	for _, s := range in {
		switch s.Kind {
		case tenancyv1alpha1.SubjectServiceAccount:
			out = append(out, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: s.Name, Namespace: s.Namespace})
		case tenancyv1alpha1.SubjectGroup:
			out = append(out, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: s.Name})
		default:
			out = append(out, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: s.Name})
		}
	}
	return out
}

// GrantName names the RBAC RoleBinding made for the tenancy RoleBinding of this name.
func GrantName(name string) string { return "tenancy:" + name }

// Grant is the RBAC RoleBinding that puts a tenancy RoleBinding in force: its subjects bound to the
// tenant role's ClusterRole in the RoleBinding's namespace, owned by the tenancy RoleBinding and
// labelled with the tenant, so that the Tenant's deletion revokes it too.
func Grant(rb *tenancyv1alpha1.RoleBinding, tenant, clusterRole string) *rbacv1.RoleBinding {
	yes := true
	return &rbacv1.RoleBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{
			Name: GrantName(rb.Name), Namespace: rb.Namespace,
			Labels: map[string]string{
				tenancyv1alpha1.LabelTenant:      tenant,
				tenancyv1alpha1.LabelRoleBinding: rb.Name,
				tenancyv1alpha1.LabelManagedBy:   tenancyv1alpha1.ManagedByValue,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: tenancyv1alpha1.GroupVersion.String(), Kind: "RoleBinding", Name: rb.Name, UID: rb.UID,
				Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects: subjects(rb.Spec.Subjects),
	}
}
