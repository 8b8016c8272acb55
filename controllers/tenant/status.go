package tenant

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
)

// areaConditions are the per-area conditions, in the order they are summarised into Ready.
var areaConditions = []string{
	tenancyv1alpha1.ConditionNamespaceReady,
	tenancyv1alpha1.ConditionIsolationReady,
	tenancyv1alpha1.ConditionRBACReady,
	tenancyv1alpha1.ConditionDatabaseReady,
	tenancyv1alpha1.ConditionSecretsReady,
}

// degradedReasons mark a condition that will not fix itself without a change by someone.
var degradedReasons = map[string]bool{
	tenancyv1alpha1.ReasonNamespaceConflict: true,
	tenancyv1alpha1.ReasonInvalidSpec:       true,
	tenancyv1alpha1.ReasonApplyFailed:       true,
	reasonBackupFailing:                     true,
	reasonFinalBackupFailed:                 true,
	reasonVaultRefused:                      true,
}

// stalledReasons need a change by someone (the spec, the cluster) before the area can be ready.
var stalledReasons = map[string]bool{
	tenancyv1alpha1.ReasonInvalidSpec:       true,
	tenancyv1alpha1.ReasonNamespaceConflict: true,
}

// computeStatus turns the observations of one pass into the Tenant's status. It is pure: the same
// observations give the same status, with no clock, so an unchanged tenant causes no status write.
// complete says the whole pass succeeded; only then does observedGeneration move.
func computeStatus(s *scope, complete bool) {
	t := s.tenant
	gen := t.Generation
	set := func(typ string, o outcome) {
		reconcileutil.SetCondition(&t.Status.Conditions, gen, typ, o.status, o.reason, o.message)
	}

	switch {
	case s.suspended:
		set(tenancyv1alpha1.ConditionReady, failed(tenancyv1alpha1.ReasonSuspended,
			"spec.suspend is true: the operator changes nothing for this tenant, deletion included, until it is false"))
		set(tenancyv1alpha1.ConditionReconciling, failed(tenancyv1alpha1.ReasonSuspended, "suspended"))
		set(tenancyv1alpha1.ConditionStalled, failed(tenancyv1alpha1.ReasonSuspended, "suspended"))
		t.Status.Phase = tenancyv1alpha1.TenantSuspended
		t.Status.ObservedGeneration = gen
		return
	case !t.DeletionTimestamp.IsZero():
		o := s.deletion
		if !o.observed() {
			o = failed(tenancyv1alpha1.ReasonDeleting, "the tenant is being deleted")
		}
		set(tenancyv1alpha1.ConditionReady, o)
		t.Status.Phase = tenancyv1alpha1.TenantTerminating
		return
	}

	nsOutcome := orUnknown(s.namespace)
	dependent := func(o outcome) outcome {
		if o.observed() {
			return o
		}
		if nsOutcome.status == metav1.ConditionFalse {
			return waiting(tenancyv1alpha1.ReasonWaitingForNamespace, "waiting for the tenant's namespace")
		}
		return orUnknown(o)
	}
	areas := map[string]outcome{
		tenancyv1alpha1.ConditionNamespaceReady: nsOutcome,
		tenancyv1alpha1.ConditionIsolationReady: dependent(s.isolation),
		tenancyv1alpha1.ConditionRBACReady:      dependent(s.access),
		tenancyv1alpha1.ConditionDatabaseReady:  dependent(s.database),
		tenancyv1alpha1.ConditionSecretsReady:   dependent(s.secrets),
	}
	var notReady, stuck []string
	anyFalse, degraded := false, false
	for _, typ := range areaConditions {
		o := areas[typ]
		set(typ, o)
		if o.status != metav1.ConditionTrue {
			notReady = append(notReady, fmt.Sprintf("%s: %s", typ, o.reason))
		}
		anyFalse = anyFalse || o.status == metav1.ConditionFalse
		degraded = degraded || (o.status == metav1.ConditionFalse && degradedReasons[o.reason])
		if o.status == metav1.ConditionFalse && (degradedReasons[o.reason] || stalledReasons[o.reason]) {
			stuck = append(stuck, fmt.Sprintf("%s: %s: %s", typ, o.reason, o.message))
		}
	}

	switch {
	case len(notReady) == 0:
		set(tenancyv1alpha1.ConditionReady, ready("the tenant is provisioned and isolated"))
		t.Status.Phase = tenancyv1alpha1.TenantReady
	case anyFalse:
		set(tenancyv1alpha1.ConditionReady, failed(tenancyv1alpha1.ReasonNotReady, strings.Join(notReady, "; ")))
		t.Status.Phase = tenancyv1alpha1.TenantProvisioning
		if degraded {
			t.Status.Phase = tenancyv1alpha1.TenantDegraded
		}
	default:
		set(tenancyv1alpha1.ConditionReady, outcome{status: metav1.ConditionUnknown,
			reason: tenancyv1alpha1.ReasonReconciling, message: strings.Join(notReady, "; ")})
		t.Status.Phase = tenancyv1alpha1.TenantProvisioning
	}
	// kstatus: Stalled when only a change by someone can help, else Reconciling until Ready.
	switch {
	case len(stuck) > 0:
		set(tenancyv1alpha1.ConditionStalled, outcome{status: metav1.ConditionTrue, reason: tenancyv1alpha1.ReasonNotReady, message: strings.Join(stuck, "; ")})
		set(tenancyv1alpha1.ConditionReconciling, failed(tenancyv1alpha1.ReasonNotReady, "stalled: see Stalled"))
	case len(notReady) > 0:
		set(tenancyv1alpha1.ConditionStalled, failed(tenancyv1alpha1.ReasonReconciling, "progressing"))
		set(tenancyv1alpha1.ConditionReconciling, outcome{status: metav1.ConditionTrue, reason: tenancyv1alpha1.ReasonReconciling, message: strings.Join(notReady, "; ")})
	default:
		set(tenancyv1alpha1.ConditionStalled, failed(tenancyv1alpha1.ReasonReady, "ready"))
		set(tenancyv1alpha1.ConditionReconciling, failed(tenancyv1alpha1.ReasonReady, "ready"))
	}
	if nsOutcome.ok() {
		t.Status.Namespace = s.namespaceName
	}
	if s.database.observed() {
		t.Status.Database = s.databaseStatus
	}
	if complete {
		t.Status.ObservedGeneration = gen
	}
}

func orUnknown(o outcome) outcome {
	if o.observed() {
		return o
	}
	return outcome{status: metav1.ConditionUnknown, reason: tenancyv1alpha1.ReasonReconciling, message: "not observed yet"}
}

// transition is a condition whose status changed in this pass.
type transition struct {
	typ    string
	status metav1.ConditionStatus
	reason string
	msg    string
}

// transitions lists the conditions whose status differs between before and after: events are
// emitted for these only, never on a pass that changed nothing.
func transitions(before, after []metav1.Condition) []transition {
	var out []transition
	for _, c := range after {
		old := meta.FindStatusCondition(before, c.Type)
		if old != nil && old.Status == c.Status {
			continue
		}
		if old == nil && c.Status == metav1.ConditionUnknown {
			continue
		}
		out = append(out, transition{typ: c.Type, status: c.Status, reason: c.Reason, msg: c.Message})
	}
	return out
}

// patchStatus computes the status, records events for transitions, and writes the status if it
// changed. Only status is diffed, against the object as it is now, so a metadata write earlier in
// the pass (finalizer) is not undone.
func (r *Reconciler) patchStatus(ctx context.Context, s *scope) error {
	computeStatus(s, s.complete)
	base := s.tenant.DeepCopy()
	base.Status = s.before.Status
	if r.Recorder != nil {
		for _, tr := range transitions(s.before.Status.Conditions, s.tenant.Status.Conditions) {
			typ := corev1.EventTypeNormal
			if tr.status == metav1.ConditionFalse {
				typ = corev1.EventTypeWarning
			}
			r.Recorder.Eventf(s.tenant, nil, typ, tr.reason, tr.typ, "%s is %s: %s", tr.typ, tr.status, tr.msg)
		}
	}
	err := reconcileutil.PatchStatus(ctx, r.Client, base, s.tenant)
	if apierrors.IsNotFound(err) {
		return nil // the finalizer was removed and the Tenant is gone
	}
	return err
}
