// Package v1alpha1 contains the tenancy.tenantctl.io/v1alpha1 API: the cluster-scoped Tenant, which
// turns one customer into an isolated namespace, a dedicated database, vault-backed secrets and
// baseline access, and the namespaced RoleBinding, which binds single sign-on identities to
// least-privilege tenant roles.
//
// +kubebuilder:object:generate=true
// +groupName=tenancy.tenantctl.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "tenancy.tenantctl.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion} //nolint:staticcheck // SA1019: kubebuilder's layout, which controller-runtime still supports; apimachinery's builder would change every type's registration for nothing a user sees

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
