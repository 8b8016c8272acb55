// Package tenant reconciles Tenants into the objects each customer needs. The objects themselves are
// built by the pure functions in internal/builders; this package decides the order, observes what
// happened, and reports it.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/apply"
	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
)

// FieldOwner is the server-side apply field manager of the Tenant controller.
const FieldOwner = "tenant-operator/tenant"

// NewApplier is the Tenant controller's applier: its field manager, and the retained label removed
// when a new Tenant adopts what an earlier one of the same name retained.
func NewApplier(c client.Client) *apply.Applier {
	a := apply.New(c, FieldOwner)
	a.ClearLabels = []string{tenancyv1alpha1.LabelRetained}
	return a
}

// Reconciler reconciles a Tenant.
type Reconciler struct {
	Client client.Client
	// APIReader reads uncached: the informer caches hold only labelled objects, so a namespace that
	// is not (yet) the tenant's can be seen only through it.
	APIReader client.Reader
	Config    config.Config
	Applier   *apply.Applier
	Recorder  events.EventRecorder
	// Vault manages tenants' Vault policies and roles; nil when no Vault is configured.
	Vault VaultClient
	// Now is the clock (time.Now when nil), as in the RoleBinding controller.
	Now func() time.Time

	// written: this controller's last writes to Tenants that its cache may not have seen yet.
	written reconcileutil.OwnWrites
	// indexed: the manager's cache indexes the cluster-wide kinds by tenant (SetupWithManager).
	indexed bool
}

// TenantIndex is the cache index of the kinds the controller lists across the cluster (namespaces,
// cluster roles and bindings, the shared database's objects) by their tenant label.
const TenantIndex = "tenancy.tenantctl.io/tenant"

func tenantOf(obj client.Object) []string {
	if name := obj.GetLabels()[tenancyv1alpha1.LabelTenant]; name != "" {
		return []string{name}
	}
	return nil
}

// indexByTenant registers TenantIndex for every kind listed across the cluster, once per kind.
func indexByTenant(ctx context.Context, mgr ctrl.Manager) error {
	done := map[schema.GroupVersionKind]bool{}
	for _, o := range inventory {
		if o.where == inTenantNamespace || done[o.gvk] || o.object == nil {
			continue
		}
		done[o.gvk] = true
		if err := mgr.GetFieldIndexer().IndexField(ctx, o.prototype(), TenantIndex, tenantOf); err != nil {
			return fmt.Errorf("index %s by tenant: %w", o.gvk.Kind, err)
		}
	}
	return nil
}

// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=tenants,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=tenants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=tenants/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=resourcequotas;limitranges,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings;clusterroles;clusterrolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=tenant-admin;tenant-developer;tenant-viewer
// +kubebuilder:rbac:groups=external-secrets.io,resources=secretstores;externalsecrets;pushsecrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=postgresql.cnpg.io,resources=clusters;scheduledbackups;backups;databases;databaseroles,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=barmancloud.cnpg.io,resources=objectstores,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch

// Reconcile brings one Tenant towards its spec and reports what it observed in status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	tenant := &tenancyv1alpha1.Tenant{}
	if err := r.Client.Get(ctx, req.NamespacedName, tenant); err != nil {
		if apierrors.IsNotFound(err) {
			r.written.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.written.Behind(tenant) {
		// The cache has not seen this controller's last write to the Tenant yet: a pass now would
		// write the same status again, on a stale resourceVersion. That write's watch event is on
		// its way and brings the Tenant back.
		log.FromContext(ctx).V(1).Info("the cache is behind this controller's last write to the Tenant; its watch event brings it back")
		return ctrl.Result{}, nil
	}
	s := newScope(tenant)
	defer func() {
		if err := r.patchStatus(ctx, s); err != nil {
			reterr = errors.Join(reterr, err)
		}
	}()

	// Deletion comes before suspension: a deletion cannot be taken back, and leaving a deleted
	// tenant's access in place until someone un-suspends it would be worse than carrying out the
	// deletion policy, which keeps the data unless the Tenant says Delete.
	if !tenant.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, s)
	}
	if tenant.Spec.Suspend {
		s.suspended = true
		return ctrl.Result{}, nil
	}
	// The finalizer is in place before anything is made, and the pass goes on: a pass of its own
	// would write a status of Unknowns only for the next pass to overwrite it, one status patch
	// and an extra pass per new tenant. The patch leaves tenant at the new resourceVersion, which
	// the status patch at the end of this pass is locked on.
	if !controllerutil.ContainsFinalizer(tenant, tenancyv1alpha1.Finalizer) {
		if err := reconcileutil.AddFinalizer(ctx, r.Client, tenant, tenancyv1alpha1.Finalizer); err != nil {
			// A conflict: the Tenant changed since it was read, and a status patch locked on what
			// was read would meet the same conflict. The retry reads it anew.
			s.stale = apierrors.IsConflict(err)
			return ctrl.Result{}, err
		}
		r.written.Wrote(tenant) // only a pass that wrote has a write for the cache to catch up with
	}
	if err := r.reconcileNormal(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.vaultResync(tenant)}, nil
}

// vaultResync is when a tenant that uses Vault is checked again. Vault has no watch, so a policy or
// role changed out of band is only found by looking; nothing else needs a periodic pass.
func (r *Reconciler) vaultResync(t *tenancyv1alpha1.Tenant) time.Duration {
	if r.Config.Vault == nil || r.Vault == nil || !secrets.Requested(t) {
		return 0
	}
	return r.Config.Vault.ResyncInterval.Duration
}

// reconcileNormal runs the phases in order. Isolation comes before access: no tenant identity is
// given access to a namespace whose fence is not in force. Later phases that do not depend on a
// failed one still run, and errors are joined.
func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) error {
	if err := r.reconcileNamespace(ctx, s); err != nil || !s.namespace.ok() {
		// A namespace that is someone else's or being deleted is a verdict too (Stalled, or waiting).
		s.verdict = err == nil
		return phaseError("namespace", err)
	}
	if err := r.reconcileIsolation(ctx, s); err != nil {
		s.access = waiting(tenancyv1alpha1.ReasonWaitingForIsolation, "access is granted once the isolation is in force")
		s.database = waiting(tenancyv1alpha1.ReasonWaitingForIsolation, "the database is created once the isolation is in force")
		s.secrets = waiting(tenancyv1alpha1.ReasonWaitingForIsolation, "secrets are provided once the isolation is in force")
		return phaseError("isolation", err)
	}
	// Access, the database and secrets are independent: a failure in one does not hold up another,
	// and each prunes its own kinds after its own apply.
	if err := errors.Join(phaseError("access", r.reconcileAccess(ctx, s)), phaseError("database", r.reconcileDatabase(ctx, s)),
		phaseError("secrets", r.reconcileSecrets(ctx, s))); err != nil {
		return err
	}
	s.verdict = true
	return nil
}

func phaseError(phase string, err error) error {
	if err == nil {
		return nil
	}
	reconcileErrors.WithLabelValues(phase).Inc()
	return fmt.Errorf("%s: %w", phase, err)
}

// SetupWithManager registers the reconciler and the watches that bring drift back to it: every
// owned kind in the inventory maps to its Tenant through the tenant label. An optional kind whose
// CRD is not installed is not watched (its absence is logged once at start).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if err := indexByTenant(context.Background(), mgr); err != nil {
		return err
	}
	r.indexed = true
	toTenant := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		name := obj.GetLabels()[tenancyv1alpha1.LabelTenant]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		For(&tenancyv1alpha1.Tenant{}).
		Named("tenant").
		WithOptions(opts)
	for _, k := range OwnedKinds() {
		if k.Optional && !Installed(mgr.GetRESTMapper(), k.Object) {
			mgr.GetLogger().Info("not watching an optional kind: its CRD is not installed", "kind", k.Object.GetObjectKind().GroupVersionKind().Kind)
			continue
		}
		b = b.Watches(k.Object, toTenant)
	}
	return b.Complete(r)
}

// Installed says whether the cluster serves obj's kind.
func Installed(mapper meta.RESTMapper, obj client.Object) bool {
	gvk := obj.GetObjectKind().GroupVersionKind()
	_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}
