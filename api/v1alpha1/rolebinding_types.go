package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoleBindingSpec grants one tenant role to single sign-on identities in the
// tenant namespace.
type RoleBindingSpec struct {
	// Role is the tenant role granted: admin, developer, viewer, or a custom role
	// the operator is configured to allow. It never names an arbitrary
	// ClusterRole.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Role string `json:"role"`

	// Subjects receive the role.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Subjects []Subject `json:"subjects"`

	// ExpiresAt is when the access ends. The binding is removed at that moment and
	// the RoleBinding reports Expired. Unset means no expiry (within the
	// operator's configured maximum, if any).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// Reason records why the access was granted, for audit (a ticket or change
	// number, say).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// RoleBindingStatus is what the operator observed of the grant.
type RoleBindingStatus struct {
	// ObservedGeneration is the generation of the spec the operator last acted on
	// in full.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (the access is in force), Expired, and the kstatus pair
	// Reconciling and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// BoundNamespaces are the namespaces in which the access is in force.
	// +optional
	// +listType=set
	BoundNamespaces []string `json:"boundNamespaces,omitempty"`

	// ExpiresAt is when the access ends, as the operator enforces it.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// RoleBinding (rolebindings.tenancy.tenantctl.io, short name trb) grants a
// tenant role to single sign-on users, groups or ServiceAccounts in a tenant
// namespace. The operator turns it into an rbac.authorization.k8s.io
// RoleBinding to the role's ClusterRole; admission refuses any grant that the
// requester could not make themselves.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=trb,categories=tenancy
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.role`
// +kubebuilder:printcolumn:name="Subjects",type=string,JSONPath=`.spec.subjects[*].name`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RoleBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RoleBindingSpec `json:"spec"`

	// +optional
	Status RoleBindingStatus `json:"status,omitempty"`
}

// RoleBindingList is a list of RoleBindings.
// +kubebuilder:object:root=true
type RoleBindingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoleBinding `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RoleBinding{}, &RoleBindingList{})
}
