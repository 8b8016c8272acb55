package v1alpha1

// SubjectKind is the kind of identity a Subject names.
// +kubebuilder:validation:Enum=User;Group;ServiceAccount
type SubjectKind string

const (
	// SubjectUser is a person, as the cluster's authentication (for example OIDC)
	// names them.
	SubjectUser SubjectKind = "User"
	// SubjectGroup is a group of people, as the cluster's authentication names it.
	SubjectGroup SubjectKind = "Group"
	// SubjectServiceAccount is a Kubernetes ServiceAccount; it must name its
	// namespace.
	SubjectServiceAccount SubjectKind = "ServiceAccount"
)

// Subject is an identity that receives access: a single sign-on user or group,
// or a ServiceAccount.
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' ? (has(self.__namespace__) && self.__namespace__.size() > 0) : !has(self.__namespace__)",message="namespace is required for a ServiceAccount subject and must not be set for a User or Group",fieldPath=".namespace"
type Subject struct {
	// Kind of the identity: User, Group or ServiceAccount.
	// +required
	Kind SubjectKind `json:"kind"`

	// Name of the identity exactly as the apiserver authenticates it, including
	// any prefix the cluster's OIDC or structured authentication configuration
	// adds (for example "acme:alice@acme.com"). For a ServiceAccount, its name in
	// Namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of a ServiceAccount subject. Required for ServiceAccount,
	// forbidden otherwise.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}
