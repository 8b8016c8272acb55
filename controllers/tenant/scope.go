package tenant

import (
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

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
	// finalBackupSkipped: the skip-final-backup annotation was honoured (and recorded) in this pass.
	finalBackupSkipped bool
	// requeueAfter: when this pass wants to look again without an event (0: only on events).
	requeueAfter time.Duration
	// verdict: every phase ran to a conclusion (ready, waiting on others, or invalid), with no
	// error to retry. Only then does observedGeneration move, as in Cluster API: an invalid spec is
	// a verdict (kstatus then reads Stalled as Failed), a Vault that cannot be reached is not.
	verdict bool
	// stale: a write to the Tenant met a conflict, so the Tenant as read is not the latest and no
	// status is written from it; the pass is retried on the fresh object.
	stale bool

	keep map[schema.GroupVersionKind]map[string]bool // kind -> names applied in this pass
}

func newScope(t *tenancyv1alpha1.Tenant) *scope {
	return &scope{tenant: t, before: t.DeepCopy(), keep: map[schema.GroupVersionKind]map[string]bool{}}
}

// markKept records that obj was applied in this pass, so pruning keeps it.
func (s *scope) markKept(scheme *runtime.Scheme, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return err
	}
	if s.keep[gvk] == nil {
		s.keep[gvk] = map[string]bool{}
	}
	s.keep[gvk][apply.Name(obj)] = true
	return nil
}

// kept says whether obj, of kind gvk, was applied in this pass.
func (s *scope) kept(gvk schema.GroupVersionKind, obj client.Object) bool {
	return s.keep[gvk][apply.Name(obj)]
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
