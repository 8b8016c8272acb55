package reconcileutil

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// warningWhen says, per condition type, which status is bad news: kstatus' Stalled and a grant's
// Expired when True; Reconciling never (True is progress, False is done); every other type (Ready
// and the areas) when False.
func warningWhen(typ string, status metav1.ConditionStatus) bool {
	switch typ {
	case "Stalled", "Expired":
		return status == metav1.ConditionTrue
	case "Reconciling":
		return false
	}
	return status == metav1.ConditionFalse
}

// Transitions are the conditions of after whose status differs from before: events are recorded
// for these only, never for a pass that changed nothing. A condition first seen as Unknown is not a
// transition.
func Transitions(before, after []metav1.Condition) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range after {
		old := meta.FindStatusCondition(before, c.Type)
		if old != nil && old.Status == c.Status {
			continue
		}
		if old == nil && c.Status == metav1.ConditionUnknown {
			continue
		}
		out = append(out, c)
	}
	return out
}

// RecordTransitions records one event per transition on obj: a Warning when the condition turned
// abnormal, else Normal. Reason and message are the condition's, which never hold a secret.
func RecordTransitions(recorder events.EventRecorder, obj runtime.Object, before, after []metav1.Condition) {
	if recorder == nil {
		return
	}
	for _, c := range Transitions(before, after) {
		typ := corev1.EventTypeNormal
		if warningWhen(c.Type, c.Status) {
			typ = corev1.EventTypeWarning
		}
		recorder.Eventf(obj, nil, typ, c.Reason, c.Type, "%s is %s: %s", c.Type, c.Status, c.Message)
	}
}

// RegisterMetrics registers collectors with controller-runtime's registry, which the manager's
// metrics endpoint serves. Registering the same collector twice (a second manager in one test
// binary) is not an error.
func RegisterMetrics(collectors ...prometheus.Collector) error {
	var errs []error
	for _, c := range collectors {
		if err := metrics.Registry.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
