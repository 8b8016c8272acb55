package externalsecrets

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is external-secrets.io/v1, which serves SecretStore and ExternalSecret.
	GroupVersion = schema.GroupVersion{Group: "external-secrets.io", Version: "v1"}
	// GroupVersionAlpha is external-secrets.io/v1alpha1, which serves PushSecret.
	GroupVersionAlpha = schema.GroupVersion{Group: "external-secrets.io", Version: "v1alpha1"}

	schemeBuilder      = &scheme.Builder{GroupVersion: GroupVersion}      //nolint:staticcheck // SA1019: as api/v1alpha1 (kubebuilder's layout)
	schemeBuilderAlpha = &scheme.Builder{GroupVersion: GroupVersionAlpha} //nolint:staticcheck // SA1019: as above
)

// AddToScheme registers the mirrored kinds.
func AddToScheme(s *runtime.Scheme) error {
	if err := schemeBuilder.AddToScheme(s); err != nil {
		return err
	}
	return schemeBuilderAlpha.AddToScheme(s)
}

func init() {
	schemeBuilder.Register(&SecretStore{}, &SecretStoreList{}, &ExternalSecret{}, &ExternalSecretList{})
	schemeBuilderAlpha.Register(&PushSecret{}, &PushSecretList{})
}

// Condition is ESO's status condition (not metav1.Condition: it has no observedGeneration).
type Condition struct {
	Type               string                 `json:"type"`
	Status             metav1.ConditionStatus `json:"status"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime,omitempty"`
}

// Status is the part of every ESO kind's status the operator reads.
type Status struct {
	Conditions []Condition `json:"conditions,omitempty"`
}

// SecretStore is a namespaced store: here, the tenant's Vault path.
// +kubebuilder:object:root=true
type SecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              SecretStoreSpec `json:"spec,omitempty"`
	Status            Status          `json:"status,omitempty"`
}

// SecretStoreList is a list of SecretStores.
// +kubebuilder:object:root=true
type SecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretStore `json:"items"`
}

// SecretStoreSpec holds the provider configuration.
type SecretStoreSpec struct {
	Provider *Provider `json:"provider,omitempty"`
}

// Provider holds the one provider the operator uses.
type Provider struct {
	Vault *VaultProvider `json:"vault,omitempty"`
}

// VaultProvider reaches a Vault KV mount.
type VaultProvider struct {
	Server   string     `json:"server"`
	Path     *string    `json:"path,omitempty"`
	Version  string     `json:"version,omitempty"`
	CABundle []byte     `json:"caBundle,omitempty"`
	Auth     *VaultAuth `json:"auth,omitempty"`
}

// VaultAuth holds the one authentication method the operator uses.
type VaultAuth struct {
	Kubernetes *VaultKubernetesAuth `json:"kubernetes,omitempty"`
}

// VaultKubernetesAuth logs in with a ServiceAccount token requested for an audience.
type VaultKubernetesAuth struct {
	MountPath         string                  `json:"mountPath"`
	Role              string                  `json:"role"`
	ServiceAccountRef *ServiceAccountSelector `json:"serviceAccountRef,omitempty"`
}

// ServiceAccountSelector names a ServiceAccount in the store's namespace and the token's audiences.
type ServiceAccountSelector struct {
	Name      string   `json:"name"`
	Audiences []string `json:"audiences,omitempty"`
}

// StoreRef names a SecretStore.
type StoreRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// ExternalSecret copies values from a store into a Secret.
// +kubebuilder:object:root=true
type ExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ExternalSecretSpec `json:"spec,omitempty"`
	Status            Status             `json:"status,omitempty"`
}

// ExternalSecretList is a list of ExternalSecrets.
// +kubebuilder:object:root=true
type ExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExternalSecret `json:"items"`
}

// ExternalSecretSpec says which values go into which Secret.
type ExternalSecretSpec struct {
	SecretStoreRef  StoreRef                 `json:"secretStoreRef"`
	Target          ExternalSecretTarget     `json:"target,omitempty"`
	RefreshInterval *metav1.Duration         `json:"refreshInterval,omitempty"`
	Data            []ExternalSecretData     `json:"data,omitempty"`
	DataFrom        []ExternalSecretDataFrom `json:"dataFrom,omitempty"`
}

// ExternalSecretTarget is the Secret written.
type ExternalSecretTarget struct {
	Name           string `json:"name,omitempty"`
	CreationPolicy string `json:"creationPolicy,omitempty"`
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
}

// ExternalSecretData copies one property of a remote key into one Secret key.
type ExternalSecretData struct {
	SecretKey string    `json:"secretKey"`
	RemoteRef RemoteRef `json:"remoteRef"`
}

// ExternalSecretDataFrom copies every property of a remote key.
type ExternalSecretDataFrom struct {
	Extract *RemoteRef `json:"extract,omitempty"`
}

// RemoteRef names a key (and optionally one property) in the store.
type RemoteRef struct {
	Key      string `json:"key"`
	Property string `json:"property,omitempty"`
}

// PushSecret copies a Secret of the namespace into a store.
// +kubebuilder:object:root=true
type PushSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              PushSecretSpec `json:"spec,omitempty"`
	Status            Status         `json:"status,omitempty"`
}

// PushSecretList is a list of PushSecrets.
// +kubebuilder:object:root=true
type PushSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PushSecret `json:"items"`
}

// PushSecretSpec says which Secret is pushed where.
type PushSecretSpec struct {
	SecretStoreRefs []StoreRef         `json:"secretStoreRefs"`
	Selector        PushSecretSelector `json:"selector"`
	Data            []PushSecretData   `json:"data,omitempty"`
	RefreshInterval *metav1.Duration   `json:"refreshInterval,omitempty"`
	DeletionPolicy  string             `json:"deletionPolicy,omitempty"`
	UpdatePolicy    string             `json:"updatePolicy,omitempty"`
}

// PushSecretSelector selects the Secret to push.
type PushSecretSelector struct {
	Secret *SecretName `json:"secret,omitempty"`
}

// SecretName names a Secret.
type SecretName struct {
	Name string `json:"name"`
}

// PushSecretData maps one Secret key to a remote key and property.
type PushSecretData struct {
	Match PushSecretMatch `json:"match"`
}

// PushSecretMatch is one pushed key.
type PushSecretMatch struct {
	SecretKey string           `json:"secretKey,omitempty"`
	RemoteRef PushSecretRemote `json:"remoteRef"`
}

// PushSecretRemote names where the key goes.
type PushSecretRemote struct {
	RemoteKey string `json:"remoteKey"`
	Property  string `json:"property,omitempty"`
}
