package tenant

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// degradedReasons mark a condition that will not fix itself without a change by someone, or that
// puts the tenant's data at risk for as long as it lasts (archiving failing, even if the object
// store comes back by itself).
var degradedReasons = map[string]bool{
	tenancyv1alpha1.ReasonArchivingFailing:  true,
	tenancyv1alpha1.ReasonNamespaceConflict: true,
	tenancyv1alpha1.ReasonInvalidSpec:       true,
	tenancyv1alpha1.ReasonApplyFailed:       true,
	tenancyv1alpha1.ReasonBackupFailing:     true,
	tenancyv1alpha1.ReasonFinalBackupFailed: true,
	tenancyv1alpha1.ReasonVaultRefused:      true,
}

// blockedDeletionReasons stop a deletion until someone acts; the message says what they can do.
var blockedDeletionReasons = map[string]bool{
	tenancyv1alpha1.ReasonFinalBackupFailed: true,
	tenancyv1alpha1.ReasonFinalBackupStuck:  true,
	tenancyv1alpha1.ReasonVaultRefused:      true,
}

// stalledReasons need a change by someone (the spec, the cluster) before the area can be ready.
var stalledReasons = map[string]bool{
	tenancyv1alpha1.ReasonInvalidSpec:       true,
	tenancyv1alpha1.ReasonNamespaceConflict: true,
}

// computeStatus turns the observations of one pass into the Tenant's status. It is pure: the same
// observations give the same status, with no clock, so an unchanged tenant causes no status write.
// verdict says the pass reached a conclusion on every area (invalid included); only then does
// observedGeneration move.
func computeStatus(s *scope, verdict bool) {
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
		if blockedDeletionReasons[o.reason] {
			set(tenancyv1alpha1.ConditionStalled, outcome{status: metav1.ConditionTrue, reason: o.reason, message: o.message})
			set(tenancyv1alpha1.ConditionReconciling, failed(o.reason, "stalled: see Stalled"))
		} else {
			set(tenancyv1alpha1.ConditionStalled, failed(o.reason, "deleting"))
			set(tenancyv1alpha1.ConditionReconciling, outcome{status: metav1.ConditionTrue, reason: o.reason, message: o.message})
		}
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
	if verdict {
		t.Status.ObservedGeneration = gen
	}
}

func orUnknown(o outcome) outcome {
	if o.observed() {
		return o
	}
	return outcome{status: metav1.ConditionUnknown, reason: tenancyv1alpha1.ReasonReconciling, message: "not observed yet"}
}

// patchStatus computes the status, writes it if it changed, and then records events for the
// notable transitions (reconcileutil.Notable: a tenant that comes up in one pass gets one event,
// Ready's). Only status is diffed, against the object as it is now, so a metadata write earlier in
// the pass (finalizer) is not undone. A status write that fails records nothing: the pass is
// retried from the status as written, and tells of the transitions then, once.
func (r *Reconciler) patchStatus(ctx context.Context, s *scope) error {
	if s.stale {
		return nil
	}
	computeStatus(s, s.verdict)
	base := s.tenant.DeepCopy()
	base.Status = s.before.Status
	err := reconcileutil.PatchStatus(ctx, r.Client, base, s.tenant)
	switch {
	case apierrors.IsNotFound(err):
		err = nil // the finalizer was removed and the Tenant is gone
		r.written.Forget(client.ObjectKeyFromObject(s.tenant))
	case err != nil:
		return err
	default:
		r.written.Wrote(s.tenant)
	}
	reconcileutil.RecordTransitions(r.Recorder, s.tenant, s.before.Status.Conditions, s.tenant.Status.Conditions, tenancyv1alpha1.ConditionReady)
	return err
}
