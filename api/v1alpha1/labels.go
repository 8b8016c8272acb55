package v1alpha1

// Labels and annotations the operator puts on what it manages. Only the operator may set, change or
// remove them: an admission policy shipped in config/admission refuses anyone else.
const (
	// LabelTenant names the Tenant an object belongs to. The operator never adopts a namespace
	// without it, and selects everything it manages (and caches) by it.
	LabelTenant = "tenancy.tenantctl.io/tenant"
	// LabelRetained marks a namespace and objects kept after their Tenant was deleted with the
	// Retain policy. A Tenant created later with the same name adopts them again.
	LabelRetained = "tenancy.tenantctl.io/retained"
	// LabelRoleBinding names the tenancy RoleBinding an RBAC RoleBinding was made for. The Tenant
	// controller leaves such bindings to the RoleBinding controller.
	LabelRoleBinding = "tenancy.tenantctl.io/rolebinding"
	// LabelManagedBy is the conventional label naming the operator.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "tenant-operator"
	// LabelPrefix is the prefix of every label reserved for the operator.
	LabelPrefix = "tenancy.tenantctl.io/"

	// AnnotationSkipFinalBackup on a Tenant being deleted under the Delete policy lets the deletion
	// go on without the final backup (which failed, or cannot run). Its value must say why; it is
	// recorded in a Warning event, and the Kubernetes audit log records who set it. Never implied.
	AnnotationSkipFinalBackup = "tenancy.tenantctl.io/skip-final-backup"
	// AnnotationSkipVaultCleanup on a Tenant being deleted under the Delete policy lets the
	// deletion go on when Vault refuses to remove the tenant's policies and roles; they are left in
	// Vault. Its value must say why; it is recorded in a Warning event.
	AnnotationSkipVaultCleanup = "tenancy.tenantctl.io/skip-vault-cleanup"

	// AnnotationClusterUID on a tenant's final Backup is the UID of the CloudNativePG Cluster it
	// backed up: a final Backup left in a retained namespace by an earlier database is not taken
	// for the current database's.
	AnnotationClusterUID = "tenancy.tenantctl.io/cluster-uid"

	// Finalizer holds a Tenant until its deletion policy has been carried out.
	Finalizer = "tenancy.tenantctl.io/finalizer"
)
