package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxTenantNameLength is the longest Tenant name. Every name the operator
// derives from a tenant must stay a valid DNS label (63 characters): the
// namespace "<prefix><tenant>" with a namespace prefix of up to 23 characters
// (the default prefix "tenant-" is 7), the Vault policy and Kubernetes-auth
// role "<prefix><tenant>", and the PostgreSQL database and role names (63
// bytes).
const MaxTenantNameLength = 40

// DeletionPolicy says what happens to a tenant's data when its Tenant is
// deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionPolicyRetain revokes every tenant identity's access but keeps the
	// namespace and all stateful objects in it (database, volumes, secrets),
	// labelled as retained. A Tenant created later with the same name adopts them
	// again.
	DeletionPolicyRetain DeletionPolicy = "Retain"
	// DeletionPolicyDelete removes the namespace and everything the operator
	// created for the tenant.
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// NetworkPolicyMode selects how strictly the tenant namespace is fenced off.
// +kubebuilder:validation:Enum=DenyIngress;DenyAll
type NetworkPolicyMode string

const (
	// NetworkPolicyDenyIngress denies all ingress except from the tenant's own
	// namespace, the platform's trusted namespaces and the peers listed in
	// allowFrom. Egress is not restricted.
	NetworkPolicyDenyIngress NetworkPolicyMode = "DenyIngress"
	// NetworkPolicyDenyAll also denies egress except to DNS, the tenant's own
	// namespace and the platform's trusted namespaces.
	NetworkPolicyDenyAll NetworkPolicyMode = "DenyAll"
)

// PodSecurityLevel is a Pod Security Standards level, enforced by Pod Security
// admission.
// +kubebuilder:validation:Enum=privileged;baseline;restricted
type PodSecurityLevel string

// The Pod Security Standards levels.
const (
	PodSecurityPrivileged PodSecurityLevel = "privileged"
	PodSecurityBaseline   PodSecurityLevel = "baseline"
	PodSecurityRestricted PodSecurityLevel = "restricted"
)

// DatabaseMode selects where the tenant's PostgreSQL database runs.
// +kubebuilder:validation:Enum=Dedicated;Shared
type DatabaseMode string

const (
	// DatabaseDedicated runs a CloudNativePG Cluster of the tenant's own in its
	// namespace.
	DatabaseDedicated DatabaseMode = "Dedicated"
	// DatabaseShared creates a database and owner role for the tenant on a shared
	// CloudNativePG Cluster named in the operator configuration.
	DatabaseShared DatabaseMode = "Shared"
)

// TenantSpec declares one customer of the platform.
// +kubebuilder:validation:XValidation:rule="!has(self.database) || !has(self.database.deletionPolicy) || self.database.deletionPolicy != 'Retain' || self.deletionPolicy != 'Delete'",message="Retain is impossible when spec.deletionPolicy is Delete: the database lives in the namespace being deleted",fieldPath=".database.deletionPolicy"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.database) || has(self.database)",message="cannot be removed once set: delete the Tenant (its deletion policy decides what happens to the data) instead",fieldPath=".database"
// +kubebuilder:validation:XValidation:rule="!has(self.database) || self.database.mode == 'Shared' || has(self.database.backup) || (has(self.database.deletionPolicy) ? self.database.deletionPolicy : self.deletionPolicy) != 'Delete' || (has(self.database.confirmDeletionWithoutBackup) && self.database.confirmDeletionWithoutBackup)",message="deleting a database that has no backups needs spec.database.confirmDeletionWithoutBackup: true; or configure spec.database.backup, or use the Retain policy",fieldPath=".database.confirmDeletionWithoutBackup"
type TenantSpec struct {
	// DisplayName is a human-readable name of the customer, for dashboards and
	// audit reports.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// Owners are the company-level single sign-on identities that administer the
	// tenant. They are bound to the tenant-admin role in the tenant namespace.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Owners []Subject `json:"owners,omitempty"`

	// Namespace configures the tenant's namespace.
	// +optional
	// +kubebuilder:default={}
	Namespace NamespaceSpec `json:"namespace,omitempty"`

	// Isolation configures the fence around the tenant namespace: network policies
	// and Pod Security.
	// +optional
	// +kubebuilder:default={}
	Isolation IsolationSpec `json:"isolation,omitempty"`

	// Quota sets the ResourceQuota hard limits of the tenant namespace. When
	// unset, the operator's configured default quota applies.
	// +optional
	Quota *QuotaSpec `json:"quota,omitempty"`

	// Limits sets the LimitRange container defaults of the tenant namespace. When
	// unset, the operator's configured default limits apply.
	// +optional
	Limits *LimitsSpec `json:"limits,omitempty"`

	// Database requests a PostgreSQL database for the tenant, run by
	// CloudNativePG. When unset, the tenant gets no database.
	// +optional
	Database *DatabaseSpec `json:"database,omitempty"`

	// Secrets makes values from the tenant's Vault path available as Secrets in
	// its namespace.
	// +optional
	Secrets *SecretsSpec `json:"secrets,omitempty"`

	// SSO maps the company's single sign-on identities onto the tenant.
	// +optional
	SSO *SSOSpec `json:"sso,omitempty"`

	// DeletionPolicy says what deleting the Tenant does to the tenant's namespace
	// and data: Retain (the default) revokes access but keeps the namespace and
	// everything stateful in it; Delete removes them.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// DeletionProtection refuses any request to delete the Tenant while true. Set
	// it to false first to delete the Tenant.
	// +optional
	DeletionProtection bool `json:"deletionProtection,omitempty"`

	// Suspend pauses reconciliation: nothing the operator manages for the tenant
	// is changed until it is false again. Existing objects stay as they are.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// NamespaceSpec configures the tenant's namespace.
// +kubebuilder:validation:XValidation:rule="has(self.name) == has(oldSelf.name)",message="name cannot be added or removed after creation",fieldPath=".name"
type NamespaceSpec struct {
	// Name of the namespace. Defaults to the operator's namespace prefix followed
	// by the tenant name ("tenant-<tenant>" with the default prefix). Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable"
	// +kubebuilder:validation:XValidation:rule="!(self in ['default', 'kube-system', 'kube-public', 'kube-node-lease'])",message="must not be a system namespace"
	Name string `json:"name,omitempty"`

	// Labels are added to the namespace. Labels under the tenancy.tenantctl.io and
	// pod-security.kubernetes.io prefixes are the operator's and cannot be set
	// here.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tenancy.tenantctl.io/') && !k.startsWith('pod-security.kubernetes.io/') && k != 'kubernetes.io/metadata.name')",message="must not set labels reserved for the operator (tenancy.tenantctl.io/*, pod-security.kubernetes.io/*, kubernetes.io/metadata.name)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$') && k.lastIndexOf('/') <= 253 && k.substring(k.lastIndexOf('/') + 1).size() <= 63)",message="every key must be a valid label key: an optional DNS subdomain prefix and '/', then at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
	Labels map[string]LabelValue `json:"labels,omitempty"`

	// Annotations are added to the namespace.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tenancy.tenantctl.io/'))",message="must not set annotations reserved for the operator (tenancy.tenantctl.io/*)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$') && k.lastIndexOf('/') <= 253 && k.substring(k.lastIndexOf('/') + 1).size() <= 63)",message="every key must be a valid annotation key: an optional DNS subdomain prefix and '/', then at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
	Annotations map[string]AnnotationValue `json:"annotations,omitempty"`
}

// LabelValue is the value of a Kubernetes label.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`
type LabelValue string

// AnnotationValue is the value of a Kubernetes annotation: at most 4096 bytes, so that the 32 a
// namespace may take from the Tenant stay within the 256 KiB Kubernetes allows in all.
// +kubebuilder:validation:MaxLength=4096
type AnnotationValue string

// IsolationSpec configures network policies and Pod Security for the tenant
// namespace.
type IsolationSpec struct {
	// NetworkPolicy selects the default-deny mode. DenyIngress (the default) lets
	// nothing reach the namespace except the tenant itself, the platform's trusted
	// namespaces and allowFrom. DenyAll also restricts egress to DNS, the tenant's
	// own namespace and the trusted namespaces. There is no mode without a fence:
	// it is the platform's firewall between customers.
	// +optional
	// +kubebuilder:default=DenyIngress
	NetworkPolicy NetworkPolicyMode `json:"networkPolicy,omitempty"`

	// PodSecurity is the Pod Security Standards level enforced, audited and warned
	// on in the namespace. Defaults to restricted.
	// +optional
	// +kubebuilder:default=restricted
	PodSecurity PodSecurityLevel `json:"podSecurity,omitempty"`

	// AllowFrom lists further peers allowed to reach into the namespace, for
	// example an ingress controller that the operator configuration does not
	// already trust.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	AllowFrom []NetworkPeer `json:"allowFrom,omitempty"`
}

// NetworkPeer selects pods in other namespaces that may reach the tenant
// namespace.
// +kubebuilder:validation:XValidation:rule="has(self.namespaceSelector)",message="namespaceSelector is required: a peer must say which namespaces it comes from",fieldPath=".namespaceSelector"
type NetworkPeer struct {
	// NamespaceSelector selects the namespaces of the peer. An empty selector
	// selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// PodSelector narrows the peer to pods with these labels. Unset selects every
	// pod.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// QuotaSpec sets the hard limits of the tenant's ResourceQuota.
type QuotaSpec struct {
	// Hard is the set of hard limits for each named resource, as in a
	// ResourceQuota (for example requests.cpu, limits.memory,
	// persistentvolumeclaims, requests.storage).
	// +required
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=24
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="quantities must not be negative"
	Hard corev1.ResourceList `json:"hard"`
}

// LimitsSpec sets the container defaults of the tenant's LimitRange.
// +kubebuilder:validation:MinProperties=1
type LimitsSpec struct {
	// Default is the default resource limit of a container that sets none.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="quantities must not be negative"
	Default corev1.ResourceList `json:"default,omitempty"`

	// DefaultRequest is the default resource request of a container that sets
	// none.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="quantities must not be negative"
	DefaultRequest corev1.ResourceList `json:"defaultRequest,omitempty"`

	// Max is the largest limit a single container may set.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="quantities must not be negative"
	Max corev1.ResourceList `json:"max,omitempty"`
}

// DatabaseSpec requests a PostgreSQL database for the tenant.
// +kubebuilder:validation:XValidation:rule="has(self.restore) == has(oldSelf.restore)",message="restore can be set only when the database is created",fieldPath=".restore"
// +kubebuilder:validation:XValidation:rule="self.mode == 'Dedicated' || !has(self.restore)",message="restore applies to a Dedicated database only",fieldPath=".restore"
// +kubebuilder:validation:XValidation:rule="self.mode == 'Dedicated' || (!has(self.instances) && !has(self.storage) && !has(self.resources) && !has(self.backup) && !has(self.parameters))",message="instances, storage, resources, parameters and backup apply to a Dedicated database only; a Shared database runs on the platform's shared cluster"
// +kubebuilder:validation:XValidation:rule="self.mode == 'Shared' || has(self.storage)",message="storage is required for a Dedicated database",fieldPath=".storage"
type DatabaseSpec struct {
	// Mode is Dedicated (the default: a CloudNativePG Cluster of the tenant's own)
	// or Shared (a database and owner role on the platform's shared cluster).
	// Immutable: moving a customer's data between modes is a migration, not an
	// edit.
	// +optional
	// +kubebuilder:default=Dedicated
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable: moving a database between modes is a migration"
	Mode DatabaseMode `json:"mode,omitempty"`

	// Instances is the number of PostgreSQL instances (one primary, the rest
	// replicas).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	Instances *int32 `json:"instances,omitempty"`

	// PostgresVersion is the PostgreSQL major version. It may be raised, never
	// lowered.
	// +optional
	// +kubebuilder:default=17
	// +kubebuilder:validation:Minimum=14
	// +kubebuilder:validation:Maximum=18
	// +kubebuilder:validation:XValidation:rule="self >= oldSelf",message="cannot be lowered: PostgreSQL does not downgrade a data directory"
	PostgresVersion int32 `json:"postgresVersion,omitempty"`

	// Storage of each instance.
	// +optional
	Storage *StorageSpec `json:"storage,omitempty"`

	// Resources of each PostgreSQL instance.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// Parameters are PostgreSQL settings. Only the parameters the operator
	// configuration allows are accepted.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Parameters map[string]string `json:"parameters,omitempty"`

	// Backup configures scheduled backups to the platform's object store. Without
	// it the database is not backed up.
	// +optional
	Backup *BackupSpec `json:"backup,omitempty"`

	// Restore creates the database from a backup instead of empty: the
	// disaster-recovery path (docs/runbooks/restore.md). It applies only when the
	// database is created and cannot be added, changed or removed later.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable: a database is restored only when it is created"
	Restore *RestoreSpec `json:"restore,omitempty"`

	// ConfirmDeletionWithoutBackup acknowledges that deleting this database under
	// the Delete policy loses its data for good, because no backup is configured.
	// Required for that combination.
	// +optional
	ConfirmDeletionWithoutBackup bool `json:"confirmDeletionWithoutBackup,omitempty"`

	// DeletionPolicy overrides spec.deletionPolicy for the database: Delete drops
	// the database while keeping a retained namespace. Retain is not possible when
	// the Tenant's own policy deletes the namespace the database lives in.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// StorageSpec sizes the volume of each PostgreSQL instance.
type StorageSpec struct {
	// Size of each instance's volume. It may grow, never shrink.
	// +required
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",message="must be greater than zero"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",message="cannot shrink: a volume can only grow"
	Size resource.Quantity `json:"size"`

	// StorageClassName of the volumes. Defaults to the cluster's default
	// StorageClass. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable"
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// BackupSpec configures scheduled backups of a dedicated database.
type BackupSpec struct {
	// Schedule of the backups in the six-field cron format CloudNativePG uses
	// (seconds minutes hours day-of-month month day-of-week), or a descriptor such
	// as @daily.
	// +optional
	// +kubebuilder:default="0 0 2 * * *"
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){5}\S+)$`
	Schedule string `json:"schedule,omitempty"`

	// RetentionPolicy is how long backups are kept, as a number of days, weeks or
	// months (for example "30d", "8w", "6m").
	// +optional
	// +kubebuilder:default="30d"
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{0,3}[dwm]$`
	RetentionPolicy string `json:"retentionPolicy,omitempty"`

	// DestinationPath overrides where in the platform's object store the tenant's
	// backups go. It defaults to the configured object-store template's path
	// followed by the tenant name.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+://[^\s]+$`
	DestinationPath string `json:"destinationPath,omitempty"`

	// ServerName is the name the database archives its WAL and backups under in
	// the object store. Defaults to "postgres". A database restored from its own
	// tenant's path must archive under a new name (for example "postgres-2"):
	// the plugin refuses to archive into a location that holds another
	// cluster's WAL.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ServerName string `json:"serverName,omitempty"`
}

// RestoreSpec names the backup a new database is recovered from.
type RestoreSpec struct {
	// DestinationPath is where in the object store the backups are. Defaults to
	// this tenant's own backup path.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+://[^\s]+$`
	DestinationPath string `json:"destinationPath,omitempty"`

	// ServerName is the name the backed-up cluster archived under. Defaults to
	// "postgres", the name of every tenant's cluster.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ServerName string `json:"serverName,omitempty"`

	// TargetTime recovers to this point in time (RFC 3339, to the microsecond)
	// instead of the end of the archive: transactions committed after it are
	// not replayed.
	// +optional
	TargetTime *metav1.Time `json:"targetTime,omitempty"`
}

// SecretsSpec makes values stored under the tenant's Vault path available as
// Secrets.
type SecretsSpec struct {
	// VaultPath overrides the tenant's path in the Vault KV mount. It defaults to
	// "<configured prefix>/<tenant>". Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable"
	VaultPath string `json:"vaultPath,omitempty"`

	// Items are the Secrets to create in the tenant namespace, each from one key
	// under the tenant's Vault path.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Items []SecretItem `json:"items,omitempty"`

	// PurgeOnDelete also deletes the tenant's secret data from Vault when the
	// Tenant is deleted under the Delete policy. By default only the tenant's
	// Vault policy and role are removed and the data stays.
	// +optional
	PurgeOnDelete bool `json:"purgeOnDelete,omitempty"`
}

// SecretItem is one Secret in the tenant namespace, filled from one key under
// the tenant's Vault path.
type SecretItem struct {
	// Name of the Secret to create in the tenant namespace.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// RemoteKey is the key's path relative to the tenant's Vault path (for example
	// "stripe").
	// +required
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`
	RemoteKey string `json:"remoteKey"`

	// Properties are the fields of the Vault entry to copy. Unset copies every
	// field.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[-._a-zA-Z0-9]+$`
	Properties []string `json:"properties,omitempty"`

	// RefreshInterval is how often the value is read again from Vault, for example
	// "1h".
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
}

// SSOSpec maps the company's single sign-on identities onto the tenant.
type SSOSpec struct {
	// UserPrefix is the prefix the cluster's authentication configuration gives
	// this company's users (for example "acme:"). When set, every User subject
	// bound in the tenant must carry it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	UserPrefix string `json:"userPrefix,omitempty"`

	// GroupPrefix is the prefix the cluster's authentication configuration gives
	// this company's groups. When set, every Group subject bound in the tenant
	// must carry it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	GroupPrefix string `json:"groupPrefix,omitempty"`

	// Groups maps identity-provider groups to tenant roles: the company-level
	// assignment.
	// +optional
	// +listType=map
	// +listMapKey=group
	// +kubebuilder:validation:MaxItems=64
	Groups []SSOGroupMapping `json:"groups,omitempty"`
}

// SSOGroupMapping grants a tenant role to an identity-provider group.
type SSOGroupMapping struct {
	// Group is the group's name as the apiserver authenticates it, including its
	// prefix.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group"`

	// Role is the tenant role granted: admin, developer, viewer, or a custom role
	// the operator is configured to allow.
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Role string `json:"role"`
}

// TenantPhase is a one-word summary of the tenant's state, for people.
// Automation should wait on conditions instead.
// +kubebuilder:validation:Enum=Pending;Provisioning;Ready;Degraded;Suspended;Terminating
type TenantPhase string

// The phases of a Tenant (status.phase), a summary of its conditions.
const (
	TenantPending      TenantPhase = "Pending"
	TenantProvisioning TenantPhase = "Provisioning"
	TenantReady        TenantPhase = "Ready"
	TenantDegraded     TenantPhase = "Degraded"
	TenantSuspended    TenantPhase = "Suspended"
	TenantTerminating  TenantPhase = "Terminating"
)

// TenantStatus is what the operator observed of the tenant.
type TenantStatus struct {
	// ObservedGeneration is the generation of the spec the operator last acted on
	// in full.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase is a one-word summary for people; wait on the Ready condition in
	// automation.
	// +optional
	Phase TenantPhase `json:"phase,omitempty"`

	// Conditions: Ready (the summary), NamespaceReady, IsolationReady, RBACReady,
	// DatabaseReady and SecretsReady.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Namespace is the name of the tenant's namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Database describes how to reach the tenant's database.
	// +optional
	Database *DatabaseStatus `json:"database,omitempty"`
}

// DatabaseStatus describes how to reach the tenant's database. It never holds
// a credential.
type DatabaseStatus struct {
	// Mode the database runs in.
	// +optional
	Mode DatabaseMode `json:"mode,omitempty"`

	// ReadWriteService is the host name of the service that reaches the primary.
	// +optional
	ReadWriteService string `json:"readWriteService,omitempty"`

	// ReadOnlyService is the host name of the service that reaches the replicas.
	// +optional
	ReadOnlyService string `json:"readOnlyService,omitempty"`

	// DatabaseName is the name of the tenant's database.
	// +optional
	DatabaseName string `json:"databaseName,omitempty"`

	// CredentialsSecret is the name of the Secret, in the tenant namespace, that
	// holds the application user's credentials. Only the name is shown here, never
	// a value.
	// +optional
	CredentialsSecret string `json:"credentialsSecret,omitempty"`

	// ReadyInstances is the number of PostgreSQL instances ready to serve.
	// +optional
	ReadyInstances int32 `json:"readyInstances,omitempty"`

	// Phase is CloudNativePG's phase of the cluster, for example "Cluster in
	// healthy state".
	// +optional
	Phase string `json:"phase,omitempty"`

	// LastSuccessfulBackup is when the last backup completed.
	// +optional
	LastSuccessfulBackup *metav1.Time `json:"lastSuccessfulBackup,omitempty"`

	// LastFailedBackup is when the last backup failed.
	// +optional
	LastFailedBackup *metav1.Time `json:"lastFailedBackup,omitempty"`

	// FirstRecoverabilityPoint is the earliest time the database can be restored
	// to from its object store (the oldest base backup still kept).
	// +optional
	FirstRecoverabilityPoint *metav1.Time `json:"firstRecoverabilityPoint,omitempty"`

	// WALArchiving says whether the write-ahead log is being archived to the
	// object store: Working, Failing, or empty until CloudNativePG reports it.
	// While it fails, nothing written since the last archived segment can be
	// recovered and DatabaseReady is False with reason ArchivingFailing.
	// +optional
	// +kubebuilder:validation:Enum=Working;Failing
	WALArchiving WALArchivingState `json:"walArchiving,omitempty"`
}

// WALArchivingState is the health of a database's continuous WAL archiving.
type WALArchivingState string

// The states of WAL archiving.
const (
	WALArchivingWorking WALArchivingState = "Working"
	WALArchivingFailing WALArchivingState = "Failing"
)

// Tenant is one customer of the platform: an isolated namespace with quotas
// and network policies, a dedicated PostgreSQL database, Vault-backed secrets
// and least-privilege access for the customer's single sign-on identities.
//
// Tenant names are DNS labels of at most 40 characters, so that every name
// derived from them stays valid.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tnt,categories=tenancy
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.namespace`
// +kubebuilder:printcolumn:name="Database",type=string,JSONPath=`.status.conditions[?(@.type=="DatabaseReady")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40",message="metadata.name must be at most 40 characters, so that the names derived from it (namespace, Vault role, database) stay valid"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label that starts with a letter: lowercase letters, digits and '-'"
type Tenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TenantSpec `json:"spec"`

	// +optional
	Status TenantStatus `json:"status,omitempty"`
}

// TenantList is a list of Tenants.
// +kubebuilder:object:root=true
type TenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Tenant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Tenant{}, &TenantList{})
}

// GetGroups returns the SSO group mappings; nil-safe.
func (s *SSOSpec) GetGroups() []SSOGroupMapping {
	if s == nil {
		return nil
	}
	return s.Groups
}
