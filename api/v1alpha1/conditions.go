package v1alpha1

// Condition types of a Tenant.
const (
	// ConditionReady summarises the other conditions: True when every area is ready.
	// `kubectl wait --for=condition=Ready tenant/<name>` waits on it.
	ConditionReady = "Ready"
	// ConditionNamespaceReady: the tenant namespace exists, is the tenant's own, and carries its labels.
	ConditionNamespaceReady = "NamespaceReady"
	// ConditionIsolationReady: network policies, ResourceQuota and LimitRange are in force.
	ConditionIsolationReady = "IsolationReady"
	// ConditionRBACReady: owners and SSO groups are bound to their tenant roles.
	ConditionRBACReady = "RBACReady"
	// ConditionDatabaseReady: the tenant's database is ready to serve.
	ConditionDatabaseReady = "DatabaseReady"
	// ConditionSecretsReady: the tenant's SecretStore and ExternalSecrets are synced from Vault.
	ConditionSecretsReady = "SecretsReady"

	// ConditionReconciling and ConditionStalled follow the kstatus conventions
	// (sigs.k8s.io/cli-utils), which Flux, Argo CD and kubectl-based tooling read: Reconciling is
	// True while the operator is still working towards Ready; Stalled is True when it cannot get
	// there without someone changing something (an invalid spec, a namespace conflict, a failing
	// backup). Both are written on Tenants and RoleBindings.
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Condition types of a RoleBinding.
const (
	// ConditionExpired is True once the RoleBinding's expiresAt has passed and its access is removed.
	ConditionExpired = "Expired"
)

// Reasons of a RoleBinding.
const (
	// ReasonExpired: expiresAt has passed; the access is removed.
	ReasonExpired = "Expired"
	// ReasonNotExpired: the access has not reached its expiresAt (or has none).
	ReasonNotExpired = "NotExpired"
	// ReasonNotATenantNamespace: the RoleBinding is not in a namespace of a live Tenant (never
	// admitted; seen when a Tenant is deleted under Retain). No access is granted.
	ReasonNotATenantNamespace = "NotATenantNamespace"
)

// Condition reasons. Every condition the operator writes carries one of these.
const (
	// ReasonReconciling: the operator has seen the object and not finished its first pass.
	ReasonReconciling = "Reconciling"
	// ReasonReady: the area is as desired.
	ReasonReady = "Ready"
	// ReasonNotReady: the summary of a tenant with at least one area not ready.
	ReasonNotReady = "NotReady"
	// ReasonNotRequested: the spec asks for nothing in this area.
	ReasonNotRequested = "NotRequested"
	// ReasonNotImplemented: this version of the operator does not yet manage this area.
	ReasonNotImplemented = "NotImplemented"
	// ReasonSuspended: spec.suspend is true; nothing is changed.
	ReasonSuspended = "Suspended"
	// ReasonDeleting: the object is being deleted.
	ReasonDeleting = "Deleting"
	// ReasonInvalidSpec: the spec passed admission but the operator cannot act on it (for example a
	// role or parameter the operator configuration does not allow).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonApplyFailed: writing a managed object failed; the message names the object.
	ReasonApplyFailed = "ApplyFailed"
)

// Reasons of the tenant boundary (namespace, isolation, access).
const (
	// ReasonNamespaceConflict: the namespace exists and is not this tenant's (no ownership label, or
	// another tenant's). The operator touches nothing in it.
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonNamespaceTerminating: the namespace is being deleted and cannot be used.
	ReasonNamespaceTerminating = "NamespaceTerminating"
	// ReasonWaitingForNamespace: this area waits until the namespace is ready.
	ReasonWaitingForNamespace = "WaitingForNamespace"
	// ReasonWaitingForIsolation: access is granted only once the isolation is in force.
	ReasonWaitingForIsolation = "WaitingForIsolation"
	// ReasonNoSubjects: the tenant has no owners or SSO groups, so nobody has been given access.
	ReasonNoSubjects = "NoSubjects"
	// ReasonRetaining / ReasonDeletingNamespace: progress of a deletion under each policy.
	ReasonRetaining         = "Retaining"
	ReasonDeletingNamespace = "DeletingNamespace"
)

// Reasons of the database area (DatabaseReady) and of a deletion waiting on the database.
const (
	// ReasonClusterNotReady: the dedicated CloudNativePG Cluster is not (yet) healthy with every
	// instance ready; the message carries CloudNativePG's phase.
	ReasonClusterNotReady = "ClusterNotReady"
	// ReasonDatabaseNotReady: CloudNativePG has not (yet) applied the tenant's database or role on
	// the shared cluster.
	ReasonDatabaseNotReady = "DatabaseNotReady"
	// ReasonBackupFailing: the database serves, but its last backup failed.
	ReasonBackupFailing = "BackupFailing"
	// ReasonArchivingFailing: the database serves, but its WAL does not reach the object store.
	ReasonArchivingFailing = "ArchivingFailing"
	// ReasonFinalBackupRunning: the deletion waits for the final backup.
	ReasonFinalBackupRunning = "FinalBackupRunning"
	// ReasonFinalBackupFailed: the final backup failed; the deletion waits, and the message says
	// what the platform engineer can do.
	ReasonFinalBackupFailed = "FinalBackupFailed"
	// ReasonFinalBackupStuck: the final backup has not completed in an hour (CloudNativePG or the
	// backup plugin not running); the deletion waits, and the message says what can be done.
	ReasonFinalBackupStuck = "FinalBackupStuck"
	// ReasonFinalBackupSkipped: the event recorded when the skip-final-backup annotation lets a
	// deletion go on without a final backup.
	ReasonFinalBackupSkipped = "FinalBackupSkipped"
)

// Reasons of the secrets area (SecretsReady) and of a deletion waiting on Vault.
const (
	// ReasonVaultUnavailable: Vault cannot be reached or is sealed; the operator retries.
	ReasonVaultUnavailable = "VaultUnavailable"
	// ReasonVaultRefused: Vault refused the operator's request (its policy does not allow it).
	ReasonVaultRefused = "VaultRefused"
	// ReasonSecretNotSynced: External Secrets Operator reports a store or secret not ready.
	ReasonSecretNotSynced = "SecretNotSynced"
	// ReasonWaitingForExternalSecrets: External Secrets Operator has not reported yet.
	ReasonWaitingForExternalSecrets = "WaitingForExternalSecrets"
	// ReasonVaultCleanupSkipped: the event recorded when the skip-vault-cleanup annotation lets a
	// deletion go on with the tenant's Vault policies and roles left in Vault.
	ReasonVaultCleanupSkipped = "VaultCleanupSkipped"
)
