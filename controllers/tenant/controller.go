// Package tenant reconciles Tenants into the objects each customer needs.
package tenant

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/status"
)

// Reconciler reconciles a Tenant.
type Reconciler struct {
	Client client.Client
	Config config.Config
}

// areas are the conditions of a Tenant, one per family of managed objects.
var areas = []string{
	tenancyv1alpha1.ConditionNamespaceReady,
	tenancyv1alpha1.ConditionIsolationReady,
	tenancyv1alpha1.ConditionRBACReady,
	tenancyv1alpha1.ConditionDatabaseReady,
	tenancyv1alpha1.ConditionSecretsReady,
}

// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=tenants,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=tenants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=tenants/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one Tenant towards its spec and reports what it observed in status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tenant := &tenancyv1alpha1.Tenant{}
	if err := r.Client.Get(ctx, req.NamespacedName, tenant); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := tenant.DeepCopy()
	gen := tenant.Generation
	for _, area := range areas {
		status.SetCondition(&tenant.Status.Conditions, gen, area, metav1.ConditionUnknown,
			tenancyv1alpha1.ReasonNotImplemented, "this version of the operator does not manage this area yet")
	}
	status.SetCondition(&tenant.Status.Conditions, gen, tenancyv1alpha1.ConditionReady, metav1.ConditionUnknown,
		tenancyv1alpha1.ReasonReconciling, "the tenant is being provisioned")
	tenant.Status.Phase = tenancyv1alpha1.TenantPending
	tenant.Status.ObservedGeneration = gen
	return ctrl.Result{}, status.Patch(ctx, r.Client, before, tenant)
}

// SetupWithManager registers the reconciler with the manager.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tenancyv1alpha1.Tenant{}).
		Named("tenant").
		WithOptions(opts).
		Complete(r)
}
