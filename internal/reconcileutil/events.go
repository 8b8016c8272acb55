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

// Notable are the transitions worth an event: every transition of the summary condition (Ready),
// and of any other condition only into its abnormal state (an area turning False, Stalled turning
// True) or out of it (its recovery). A condition that first appears in its normal state, or moves
// between normal states (Reconciling going False once done), is summed up by the summary's event.
// So an object that comes up in one pass costs one event, not one per condition: at a thousand
// tenants, a write per condition is thousands of requests that say nothing Ready does not.
func Notable(before, after []metav1.Condition, summary string) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range Transitions(before, after) {
		old := meta.FindStatusCondition(before, c.Type)
		recovered := old != nil && warningWhen(old.Type, old.Status)
		if c.Type == summary || warningWhen(c.Type, c.Status) || recovered {
			out = append(out, c)
		}
	}
	return out
}

// RecordTransitions records one event per notable transition on obj (Notable, with summary the
// condition that sums up the others): a Warning when the condition turned abnormal, else Normal.
// Reason and message are the condition's, which never hold a secret. Call it once the status that
// carries after is written: a pass whose status write fails is retried, and must not have told of
// transitions that did not happen.
func RecordTransitions(recorder events.EventRecorder, obj runtime.Object, before, after []metav1.Condition, summary string) {
	if recorder == nil {
		return
	}
	for _, c := range Notable(before, after, summary) {
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
