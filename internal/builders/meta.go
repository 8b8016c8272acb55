// Package builders turns a Tenant into the objects it needs, without I/O: every function here is a
// pure function of the Tenant, the resolved namespace and the operator configuration. A builder that
// returns nil means "this object must not exist". Subpackages hold one family of objects each.
package builders

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
)

// Labels are put on everything the operator manages for a tenant. The informer caches select on
// LabelTenant, and pruning lists by it.
func Labels(t *tenancyv1alpha1.Tenant) map[string]string {
	return map[string]string{
		tenancyv1alpha1.LabelTenant:    t.Name,
		tenancyv1alpha1.LabelManagedBy: tenancyv1alpha1.ManagedByValue,
	}
}

// ObjectMeta is the metadata of a managed object: the tenant's labels and the Tenant as controlling
// owner. What happens to the object when its Tenant is deleted under the Retain policy is not a
// builder's concern: one transform at deletion (controllers/tenant, retain.go) strips the owner
// reference and labels it retained.
func ObjectMeta(t *tenancyv1alpha1.Tenant, namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: Labels(t),
		OwnerReferences: []metav1.OwnerReference{OwnerReference(t)}}
}

// OwnerReference points at the Tenant as the controlling owner.
func OwnerReference(t *tenancyv1alpha1.Tenant) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion:         tenancyv1alpha1.GroupVersion.String(),
		Kind:               "Tenant",
		Name:               t.Name,
		UID:                t.UID,
		Controller:         &yes,
		BlockOwnerDeletion: &yes,
	}
}
