package reconcileutil

import (
	"fmt"
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

func TestNotable(t *testing.T) {
	cond := func(typ string, s metav1.ConditionStatus) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: "R"}
	}
	T, F, U := metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
	cases := map[string]struct {
		before, after []metav1.Condition
		want          []string // the types of the notable transitions, in order
	}{
		"a new object ready in one pass is one event, Ready's": {
			after: []metav1.Condition{cond("NamespaceReady", T), cond("SecretsReady", T), cond("Ready", T),
				cond("Reconciling", F), cond("Stalled", F)},
			want: []string{"Ready"},
		},
		"a new object that fails tells of the failure too": {
			after: []metav1.Condition{cond("NamespaceReady", F), cond("Ready", F), cond("Reconciling", F), cond("Stalled", T)},
			want:  []string{"NamespaceReady", "Ready", "Stalled"},
		},
		"an area failing while Ready is already False": {
			before: []metav1.Condition{cond("DatabaseReady", F), cond("SecretsReady", T), cond("Ready", F)},
			after:  []metav1.Condition{cond("DatabaseReady", F), cond("SecretsReady", F), cond("Ready", F)},
			want:   []string{"SecretsReady"},
		},
		"an area recovering while Ready stays False": {
			before: []metav1.Condition{cond("DatabaseReady", F), cond("SecretsReady", F), cond("Ready", F)},
			after:  []metav1.Condition{cond("DatabaseReady", F), cond("SecretsReady", T), cond("Ready", F)},
			want:   []string{"SecretsReady"},
		},
		"the last area recovering: the area and Ready": {
			before: []metav1.Condition{cond("SecretsReady", F), cond("Ready", F), cond("Reconciling", T), cond("Stalled", F)},
			after:  []metav1.Condition{cond("SecretsReady", T), cond("Ready", T), cond("Reconciling", F), cond("Stalled", F)},
			want:   []string{"SecretsReady", "Ready"},
		},
		"no longer stalled": {
			before: []metav1.Condition{cond("Stalled", T), cond("Ready", F)},
			after:  []metav1.Condition{cond("Stalled", F), cond("Ready", F)},
			want:   []string{"Stalled"},
		},
		"Ready from Unknown": {
			before: []metav1.Condition{cond("Ready", U), cond("Reconciling", T)},
			after:  []metav1.Condition{cond("Ready", T), cond("Reconciling", F)},
			want:   []string{"Ready"},
		},
		"nothing changed": {
			before: []metav1.Condition{cond("Ready", T)},
			after:  []metav1.Condition{cond("Ready", T)},
		},
	}
	for name, tc := range cases {
		var got []string
		for _, c := range Notable(tc.before, tc.after, "Ready") {
			got = append(got, c.Type)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: Notable = %v, want %v", name, got, tc.want)
		}
	}
}
