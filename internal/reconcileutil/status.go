// Package reconcileutil holds the reconcile mechanics both controllers and the admission webhook
// share. Writing status: conditions carry the generation they
// were computed for, and a status is written only when it changed, under an optimistic lock.
package reconcileutil

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SetCondition records a condition for the object's current generation. The transition time moves
// only when the status changes, so an unchanged condition never causes a write.
func SetCondition(conditions *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, message string) bool {
	return meta.SetStatusCondition(conditions, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

// PatchStatus writes obj's status if it differs from before, the object as it was read. The optimistic
// lock makes a concurrent writer's change fail the patch instead of being overwritten.
func PatchStatus(ctx context.Context, c client.Client, before, obj client.Object) error {
	if equality.Semantic.DeepEqual(before, obj) {
		return nil
	}
	return c.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}
