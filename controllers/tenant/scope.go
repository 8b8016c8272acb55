package tenant

import (
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/apply"
)

// scope carries one pass: the Tenant as read, and what each phase observed. Status is computed
// from these observations at the end of the pass, never from the conditions written last time.
type scope struct {
	tenant *tenancyv1alpha1.Tenant
	before *tenancyv1alpha1.Tenant

	namespaceName string
	namespace     outcome
	isolation     outcome
	access        outcome
	database      outcome
	secrets       outcome
	deletion      outcome

	databaseStatus *tenancyv1alpha1.DatabaseStatus

	suspended bool
	invalid   bool // the spec cannot be acted on until it changes
	complete  bool // every phase ran and succeeded: observedGeneration may move

	keep map[string]map[string]bool // kind -> names applied in this pass
}

func newScope(t *tenancyv1alpha1.Tenant) *scope {
	return &scope{tenant: t, before: t.DeepCopy(), keep: map[string]map[string]bool{}}
}

// markKept records that obj was applied in this pass, so pruning keeps it.
func (s *scope) markKept(obj client.Object) {
	kind := kindOf(obj)
	if s.keep[kind] == nil {
		s.keep[kind] = map[string]bool{}
	}
	s.keep[kind][apply.Name(obj)] = true
}

// kept is the set of names of list's kind applied in this pass.
func (s *scope) kept(list client.ObjectList) map[string]bool {
	return s.keep[strings.TrimSuffix(kindOf(list), "List")]
}

// kindOf names an object's kind: from its GVK when it is unstructured, else from its Go type.
func kindOf(obj runtime.Object) string {
	if u, ok := obj.(interface{ GetKind() string }); ok && u.GetKind() != "" {
		return u.GetKind()
	}
	return reflect.TypeOf(obj).Elem().Name()
}

// outcome is one area's observed state; the zero value is "not observed in this pass".
type outcome struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

func (o outcome) observed() bool { return o.status != "" }
func (o outcome) ok() bool       { return o.status == metav1.ConditionTrue }

func ready(message string) outcome {
	return outcome{status: metav1.ConditionTrue, reason: tenancyv1alpha1.ReasonReady, message: message}
}

func readyWithReason(reason, message string) outcome {
	return outcome{status: metav1.ConditionTrue, reason: reason, message: message}
}

func failed(reason, message string) outcome {
	return outcome{status: metav1.ConditionFalse, reason: reason, message: message}
}

func waiting(reason, message string) outcome {
	return outcome{status: metav1.ConditionFalse, reason: reason, message: message}
}
