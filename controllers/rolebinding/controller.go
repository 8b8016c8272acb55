// Package rolebinding reconciles rolebindings.tenancy.tenantctl.io objects into RBAC RoleBindings
// to tenant roles.
package rolebinding

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

// Reconciler reconciles a tenancy RoleBinding.
type Reconciler struct {
	Client client.Client
	Config config.Config
}

// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=rolebindings,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=rolebindings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=rolebindings/finalizers,verbs=update

// Reconcile brings one RoleBinding towards its spec and reports what it observed in status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rb := &tenancyv1alpha1.RoleBinding{}
	if err := r.Client.Get(ctx, req.NamespacedName, rb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := rb.DeepCopy()
	status.SetCondition(&rb.Status.Conditions, rb.Generation, tenancyv1alpha1.ConditionReady, metav1.ConditionUnknown,
		tenancyv1alpha1.ReasonNotImplemented, "this version of the operator does not bind tenant roles yet")
	rb.Status.ObservedGeneration = rb.Generation
	return ctrl.Result{}, status.Patch(ctx, r.Client, before, rb)
}

// SetupWithManager registers the reconciler with the manager.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tenancyv1alpha1.RoleBinding{}).
		Named("rolebinding").
		WithOptions(opts).
		Complete(r)
}
