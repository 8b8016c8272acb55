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

func TestWarningWhen(t *testing.T) {
	cases := map[string]struct {
		typ    string                 // condition type
		status metav1.ConditionStatus // its new status
		want   bool                   // a Warning event
	}{
		"ready":              {typ: "Ready", status: metav1.ConditionTrue, want: false},
		"not ready":          {typ: "Ready", status: metav1.ConditionFalse, want: true},
		"an area failing":    {typ: "SecretsReady", status: metav1.ConditionFalse, want: true},
		"stalled":            {typ: "Stalled", status: metav1.ConditionTrue, want: true},
		"no longer stalled":  {typ: "Stalled", status: metav1.ConditionFalse, want: false},
		"reconciling done":   {typ: "Reconciling", status: metav1.ConditionFalse, want: false},
		"reconciling":        {typ: "Reconciling", status: metav1.ConditionTrue, want: false},
		"expired":            {typ: "Expired", status: metav1.ConditionTrue, want: true},
		"unknown is nothing": {typ: "Ready", status: metav1.ConditionUnknown, want: false},
	}
	for name, tc := range cases {
		if got := warningWhen(tc.typ, tc.status); got != tc.want {
			t.Errorf("%s: warningWhen(%s, %s) = %v, want %v", name, tc.typ, tc.status, got, tc.want)
		}
	}
}
