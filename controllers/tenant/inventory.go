package tenant

import (
	"fmt"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
)

// area is one part of a tenant that reconciles, reports a condition and prunes on its own.
type area string

const (
	areaNamespace area = "namespace"
	areaIsolation area = "isolation"
	areaAccess    area = "access"
	areaDatabase  area = "database"
	areaSecrets   area = "secrets"
)

// placement says where objects of one inventory entry live.
type placement int

const (
	// inTenantNamespace: in the tenant's own namespace.
	inTenantNamespace placement = iota
	// outsideTenantNamespace: in another namespace (the shared database cluster's), found by label
	// anywhere except the tenant's namespace.
	outsideTenantNamespace
	// clusterScoped: not namespaced.
	clusterScoped
)

// owned is one kind of object the Tenant controller makes, and what it does with it.
type owned struct {
	gvk   schema.GroupVersionKind
	area  area
	where placement
	// prune: deleted when the spec stops asking for it. Never set for what holds a customer's data
	// or credentials (namespaces, Clusters, Databases, roles, Secrets): losing them takes an
	// explicit deletion, never a spec edit.
	prune bool
	// optional: the kind's CRD may be absent (the Barman Cloud plugin is an optional part of a
	// platform). Absent, it is neither watched nor cached, and nothing of it exists to prune.
	optional bool
	// object is a typed prototype; nil for kinds known only as unstructured.
	object client.Object
}

var (
	gvkNamespace          = corev1.SchemeGroupVersion.WithKind("Namespace")
	gvkResourceQuota      = corev1.SchemeGroupVersion.WithKind("ResourceQuota")
	gvkLimitRange         = corev1.SchemeGroupVersion.WithKind("LimitRange")
	gvkNetworkPolicy      = networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy")
	gvkRoleBinding        = rbacv1.SchemeGroupVersion.WithKind("RoleBinding")
	gvkClusterRole        = rbacv1.SchemeGroupVersion.WithKind("ClusterRole")
	gvkClusterRoleBinding = rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding")
	gvkSecret             = corev1.SchemeGroupVersion.WithKind("Secret")
	gvkServiceAccount     = corev1.SchemeGroupVersion.WithKind("ServiceAccount")
	gvkCluster            = cnpgv1.SchemeGroupVersion.WithKind("Cluster")
	gvkScheduledBackup    = cnpgv1.SchemeGroupVersion.WithKind("ScheduledBackup")
	gvkBackup             = cnpgv1.SchemeGroupVersion.WithKind("Backup")
	gvkDatabase           = cnpgv1.SchemeGroupVersion.WithKind("Database")
	gvkDatabaseRole       = cnpgv1.SchemeGroupVersion.WithKind("DatabaseRole")
	gvkSecretStore        = externalsecrets.GroupVersion.WithKind("SecretStore")
	gvkExternalSecret     = externalsecrets.GroupVersion.WithKind("ExternalSecret")
	gvkPushSecret         = externalsecrets.GroupVersionAlpha.WithKind("PushSecret")
	gvkObjectStore        = database.ObjectStoreGVK
)

// inventory is the one list of what the Tenant controller owns. It feeds the cache options and the
// watches (controllers.CacheOptions, SetupWithManager), each area's pruning, the revocation of
// access at deletion, and the retain transform: a kind added here is handled everywhere, and a
// kind missing here is handled nowhere (TestInventoryCoversEveryBuiltKind checks the builders).
//
// A kind can appear twice, for two areas in two places: the isolation area's NetworkPolicies are
// in the tenant namespace, the database area's in the shared cluster's.
var inventory = []owned{
	{gvk: gvkNamespace, area: areaNamespace, where: clusterScoped, object: &corev1.Namespace{}},
	{gvk: gvkResourceQuota, area: areaIsolation, where: inTenantNamespace, prune: true, object: &corev1.ResourceQuota{}},
	{gvk: gvkLimitRange, area: areaIsolation, where: inTenantNamespace, prune: true, object: &corev1.LimitRange{}},
	{gvk: gvkNetworkPolicy, area: areaIsolation, where: inTenantNamespace, prune: true, object: &networkingv1.NetworkPolicy{}},
	{gvk: gvkRoleBinding, area: areaAccess, where: inTenantNamespace, prune: true, object: &rbacv1.RoleBinding{}},
	{gvk: gvkClusterRole, area: areaAccess, where: clusterScoped, prune: true, object: &rbacv1.ClusterRole{}},
	{gvk: gvkClusterRoleBinding, area: areaAccess, where: clusterScoped, prune: true, object: &rbacv1.ClusterRoleBinding{}},
	{gvk: gvkCluster, area: areaDatabase, where: inTenantNamespace, object: &cnpgv1.Cluster{}},
	{gvk: gvkScheduledBackup, area: areaDatabase, where: inTenantNamespace, prune: true, object: &cnpgv1.ScheduledBackup{}},
	{gvk: gvkBackup, area: areaDatabase, where: inTenantNamespace, object: &cnpgv1.Backup{}},
	{gvk: gvkObjectStore, area: areaDatabase, where: inTenantNamespace, prune: true, optional: true},
	{gvk: gvkSecret, area: areaDatabase, where: inTenantNamespace, object: &corev1.Secret{}},
	{gvk: gvkDatabase, area: areaDatabase, where: outsideTenantNamespace, object: &cnpgv1.Database{}},
	{gvk: gvkDatabaseRole, area: areaDatabase, where: outsideTenantNamespace, object: &cnpgv1.DatabaseRole{}},
	{gvk: gvkNetworkPolicy, area: areaDatabase, where: outsideTenantNamespace, prune: true, object: &networkingv1.NetworkPolicy{}},
	{gvk: gvkSecret, area: areaDatabase, where: outsideTenantNamespace, object: &corev1.Secret{}},
	{gvk: gvkServiceAccount, area: areaSecrets, where: inTenantNamespace, prune: true, object: &corev1.ServiceAccount{}},
	{gvk: gvkSecretStore, area: areaSecrets, where: inTenantNamespace, prune: true, object: &externalsecrets.SecretStore{}},
	{gvk: gvkExternalSecret, area: areaSecrets, where: inTenantNamespace, prune: true, object: &externalsecrets.ExternalSecret{}},
	{gvk: gvkPushSecret, area: areaSecrets, where: inTenantNamespace, prune: true, object: &externalsecrets.PushSecret{}},
}

// init checks that every typed entry's kind is the one its Go type is registered as, so that a
// wrong group or version is caught when the program starts, not when a list fails.
func init() {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(cnpgv1.AddToScheme(s))
	utilruntime.Must(externalsecrets.AddToScheme(s))
	for _, o := range inventory {
		if o.object == nil {
			continue
		}
		gvk, err := apiutil.GVKForObject(o.object, s)
		if err != nil || gvk != o.gvk {
			panic(fmt.Sprintf("inventory: %T is %v, not %v (%v)", o.object, gvk, o.gvk, err))
		}
	}
}

// prototype is an empty object of the entry's kind, for the cache and the watches.
func (o owned) prototype() client.Object {
	if o.object != nil {
		return o.object.DeepCopyObject().(client.Object)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(o.gvk)
	return u
}

// newList is an empty list of the entry's kind: typed when the scheme knows the kind (typed and
// unstructured reads would each start an informer of their own), unstructured otherwise.
func (o owned) newList(scheme *runtime.Scheme) client.ObjectList {
	gvk := o.gvk.GroupVersion().WithKind(o.gvk.Kind + "List")
	if obj, err := scheme.New(gvk); err == nil {
		if l, ok := obj.(client.ObjectList); ok {
			return l
		}
	}
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk)
	return l
}

// Kind is one of the kinds the Tenant controller owns (Kinds lists them, once each), with whether
// its CRD may be absent.
type Kind struct {
	Object   client.Object
	Optional bool
}

// OwnedKinds lists each owned kind once: the manager caches them by the tenant label only, so memory
// does not grow with unrelated objects in the cluster, and the controller watches them for drift.
func OwnedKinds() []Kind {
	seen := map[schema.GroupVersionKind]bool{}
	var out []Kind
	for _, o := range inventory {
		if seen[o.gvk] {
			continue
		}
		seen[o.gvk] = true
		out = append(out, Kind{Object: o.prototype(), Optional: o.optional})
	}
	return out
}
