// Package rolebinding reconciles rolebindings.tenancy.tenantctl.io objects into RBAC RoleBindings
// to tenant roles, and removes that access at expiresAt. Whether a grant may be made at all is
// decided at admission (internal/webhook); this controller only puts admitted grants in force, and
// takes them away again when they expire or their Tenant goes.
package rolebinding

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/apply"
	"github.com/tenantctl/tenant-operator/internal/builders/access"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
)

// FieldOwner is the server-side apply field manager of the RoleBinding controller.
const FieldOwner = "tenant-operator/rolebinding"

var expirations = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "tenant_operator_rolebinding_expirations_total",
	Help: "Tenancy RoleBindings whose access was removed because expiresAt passed.",
})

// RegisterMetrics registers the RoleBinding metrics with the manager's registry.
func RegisterMetrics() error { return reconcileutil.RegisterMetrics(expirations) }

// Reconciler reconciles a tenancy RoleBinding.
type Reconciler struct {
	Client   client.Client
	Config   config.Config
	Applier  *apply.Applier
	Recorder events.EventRecorder
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// written: this controller's last status writes that its cache may not have seen yet.
	written reconcileutil.OwnWrites
}

// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=rolebindings,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=rolebindings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tenancy.tenantctl.io,resources=rolebindings/finalizers,verbs=update

// scope carries one pass over a RoleBinding: the object as read and as it will be written. Status
// is computed and patched once, in a deferred step, as in the Tenant controller.
type scope struct {
	rb     *tenancyv1alpha1.RoleBinding
	before *tenancyv1alpha1.RoleBinding
}

// Reconcile puts one RoleBinding's grant in force, or takes it away, and reports which in status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	rb := &tenancyv1alpha1.RoleBinding{}
	if err := r.Client.Get(ctx, req.NamespacedName, rb); err != nil {
		if apierrors.IsNotFound(err) {
			r.written.Forget(req.NamespacedName)
			// Removed explicitly rather than left to the garbage collector alone: access must end
			// with the object even where no collector runs.
			return ctrl.Result{}, r.revoke(ctx, req.Namespace, access.GrantName(req.Name))
		}
		return ctrl.Result{}, err
	}
	if r.written.Behind(rb) {
		// As in the Tenant controller: the cache has not seen this controller's last status write
		// yet, and that write's watch event brings the grant back. Its access is as that pass left
		// it: in force, or revoked.
		log.FromContext(ctx).V(1).Info("the cache is behind this controller's last write to the RoleBinding; its watch event brings it back")
		return ctrl.Result{}, nil
	}
	if !rb.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.revoke(ctx, rb.Namespace, access.GrantName(rb.Name))
	}
	s := &scope{rb: rb, before: rb.DeepCopy()}
	defer func() {
		if err := r.patchStatus(ctx, s); err != nil {
			reterr = errors.Join(reterr, err)
		}
	}()
	return r.reconcile(ctx, rb)
}

// patchStatus derives the kstatus conditions, writes the status if it changed, and then records
// events for the notable transitions (as in the Tenant controller: Ready's, and any condition's into
// or out of trouble). Every pass reaches a verdict on a grant, so observedGeneration moves.
func (r *Reconciler) patchStatus(ctx context.Context, s *scope) error {
	setKstatus(s.rb)
	s.rb.Status.ObservedGeneration = s.rb.Generation
	if err := reconcileutil.PatchStatus(ctx, r.Client, s.before, s.rb); err != nil {
		return err
	}
	r.written.Wrote(s.rb)
	reconcileutil.RecordTransitions(r.Recorder, s.rb, s.before.Status.Conditions, s.rb.Status.Conditions, tenancyv1alpha1.ConditionReady)
	return nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) reconcile(ctx context.Context, rb *tenancyv1alpha1.RoleBinding) (ctrl.Result, error) {
	rb.Status.ExpiresAt = rb.Spec.ExpiresAt
	tenant, err := reconcileutil.TenantOf(ctx, r.Client, rb.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	if tenant == nil {
		r.setNotInForce(rb, tenancyv1alpha1.ReasonNotATenantNamespace,
			fmt.Sprintf("namespace %s does not belong to a live Tenant: no access is granted", rb.Namespace))
		return ctrl.Result{}, r.revoke(ctx, rb.Namespace, access.GrantName(rb.Name))
	}
	clusterRole, ok := r.Config.Roles[rb.Spec.Role]
	if !ok {
		r.setNotInForce(rb, tenancyv1alpha1.ReasonInvalidSpec,
			fmt.Sprintf("spec.role: %q is not a tenant role of this operator", rb.Spec.Role))
		return ctrl.Result{}, r.revoke(ctx, rb.Namespace, access.GrantName(rb.Name))
	}
	now := r.now()
	if exp := rb.Spec.ExpiresAt; exp != nil && !now.Before(exp.Time) {
		if err := r.revoke(ctx, rb.Namespace, access.GrantName(rb.Name)); err != nil {
			return ctrl.Result{}, err
		}
		if !meta.IsStatusConditionTrue(rb.Status.Conditions, tenancyv1alpha1.ConditionExpired) {
			expirations.Inc()
		}
		reconcileutil.SetCondition(&rb.Status.Conditions, rb.Generation, tenancyv1alpha1.ConditionExpired, metav1.ConditionTrue,
			tenancyv1alpha1.ReasonExpired, "expired at "+exp.UTC().Format(time.RFC3339)+"; the access is removed")
		reconcileutil.SetCondition(&rb.Status.Conditions, rb.Generation, tenancyv1alpha1.ConditionReady, metav1.ConditionFalse,
			tenancyv1alpha1.ReasonExpired, "expired at "+exp.UTC().Format(time.RFC3339))
		rb.Status.BoundNamespaces = nil
		return ctrl.Result{}, nil
	}
	if _, err := r.Applier.Apply(ctx, access.Grant(rb, tenant.Name, clusterRole)); err != nil {
		reconcileutil.SetCondition(&rb.Status.Conditions, rb.Generation, tenancyv1alpha1.ConditionReady, metav1.ConditionFalse,
			tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return ctrl.Result{}, err
	}
	rb.Status.BoundNamespaces = []string{rb.Namespace}
	msg := fmt.Sprintf("%s is bound to %s in %s", rb.Spec.Role, clusterRole, rb.Namespace)
	reconcileutil.SetCondition(&rb.Status.Conditions, rb.Generation, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue,
		tenancyv1alpha1.ReasonReady, msg)
	reconcileutil.SetCondition(&rb.Status.Conditions, rb.Generation, tenancyv1alpha1.ConditionExpired, metav1.ConditionFalse,
		tenancyv1alpha1.ReasonNotExpired, "the access is in force")
	if exp := rb.Spec.ExpiresAt; exp != nil {
		// Come back exactly when the access must end; nothing polls in between.
		return ctrl.Result{RequeueAfter: exp.Sub(now)}, nil
	}
	return ctrl.Result{}, nil
}

// setKstatus derives the kstatus conditions from Ready. A grant that cannot be in force without a
// change is Stalled: an invalid one, and an expired one (kstatus would otherwise read its
// Ready=False as progress and keep a GitOps sync waiting forever; Stalled tells whoever keeps it
// in Git to remove it or extend expiresAt). Anything else still reconciles.
func setKstatus(rb *tenancyv1alpha1.RoleBinding) {
	set := func(typ string, st metav1.ConditionStatus, reason, msg string) {
		reconcileutil.SetCondition(&rb.Status.Conditions, rb.Generation, typ, st, reason, msg)
	}
	ready := meta.FindStatusCondition(rb.Status.Conditions, tenancyv1alpha1.ConditionReady)
	switch {
	case ready == nil:
		set(tenancyv1alpha1.ConditionReconciling, metav1.ConditionTrue, tenancyv1alpha1.ReasonReconciling, "not observed yet")
		set(tenancyv1alpha1.ConditionStalled, metav1.ConditionFalse, tenancyv1alpha1.ReasonReconciling, "progressing")
	case ready.Status == metav1.ConditionTrue:
		set(tenancyv1alpha1.ConditionReconciling, metav1.ConditionFalse, ready.Reason, "in force")
		set(tenancyv1alpha1.ConditionStalled, metav1.ConditionFalse, ready.Reason, "in force")
	case ready.Reason == tenancyv1alpha1.ReasonExpired:
		set(tenancyv1alpha1.ConditionReconciling, metav1.ConditionFalse, ready.Reason, "expired")
		set(tenancyv1alpha1.ConditionStalled, metav1.ConditionTrue, ready.Reason, ready.Message+": remove the RoleBinding or extend expiresAt")
	case ready.Reason == tenancyv1alpha1.ReasonInvalidSpec || ready.Reason == tenancyv1alpha1.ReasonNotATenantNamespace:
		set(tenancyv1alpha1.ConditionReconciling, metav1.ConditionFalse, ready.Reason, "stalled: see Stalled")
		set(tenancyv1alpha1.ConditionStalled, metav1.ConditionTrue, ready.Reason, ready.Message)
	default:
		set(tenancyv1alpha1.ConditionReconciling, metav1.ConditionTrue, ready.Reason, ready.Message)
		set(tenancyv1alpha1.ConditionStalled, metav1.ConditionFalse, ready.Reason, "progressing")
	}
}

func (r *Reconciler) setNotInForce(rb *tenancyv1alpha1.RoleBinding, reason, msg string) {
	rb.Status.BoundNamespaces = nil
	reconcileutil.SetCondition(&rb.Status.Conditions, rb.Generation, tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// revoke deletes the grant's RBAC RoleBinding if the cache has it. Every grant carries the tenant
// label, so the cache holds every one the operator made; one made so recently that the cache has
// not seen it yet brings its tenancy RoleBinding back here when it arrives (Owns), and is deleted
// then. So a revoked grant's later passes (the deletion's own watch event, its Tenant's status
// changes, a resync) cost no request, where a blind delete cost a DELETE answered 404 each time.
func (r *Reconciler) revoke(ctx context.Context, namespace, name string) error {
	rb := &rbacv1.RoleBinding{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, rb); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !rb.DeletionTimestamp.IsZero() {
		return nil
	}
	_, err := r.Applier.Delete(ctx, rb)
	return err
}

// SetupWithManager registers the reconciler. Changes to the RBAC RoleBindings it made bring their
// RoleBinding back (drift); a Tenant's changes bring back every RoleBinding in its namespace (its
// deletion revokes them).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	byTenant := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		t, ok := obj.(*tenancyv1alpha1.Tenant)
		if !ok || t.Status.Namespace == "" {
			return nil
		}
		list := &tenancyv1alpha1.RoleBindingList{}
		if err := r.Client.List(ctx, list, client.InNamespace(t.Status.Namespace)); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, rb := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rb)})
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&tenancyv1alpha1.RoleBinding{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&tenancyv1alpha1.Tenant{}, byTenant).
		Named("rolebinding").
		WithOptions(opts).
		Complete(r)
}
