package reconcileutil

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTransitions(t *testing.T) {
	cond := func(typ string, s metav1.ConditionStatus) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: "R"}
	}
	before := []metav1.Condition{cond("Ready", metav1.ConditionUnknown), cond("NamespaceReady", metav1.ConditionTrue)}
	after := []metav1.Condition{cond("Ready", metav1.ConditionTrue), cond("NamespaceReady", metav1.ConditionTrue), cond("RBACReady", metav1.ConditionUnknown)}
	got := Transitions(before, after)
	if len(got) != 1 || got[0].Type != "Ready" || got[0].Status != metav1.ConditionTrue {
		t.Errorf("Transitions = %+v, want only Ready becoming True (a new Unknown is not an event)", got)
	}
}
