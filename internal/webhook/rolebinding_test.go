package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
)

// Before the RBAC cache has synced, a grant that needs the requester's RBAC is not decided on an
// empty view: it is refused with an error that says why. A grant that needs no RBAC read
// (system:masters) is still decided. The envtest suite in controllers/rolebinding covers the
// synced cache against a real apiserver.
func TestGrantWaitsForTheRBACCache(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, tenancyv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-acme", Labels: map[string]string{tenancyv1alpha1.LabelTenant: "acme"}}},
		&tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}, Status: tenancyv1alpha1.TenantStatus{Namespace: "tenant-acme"}},
	).WithInterceptorFuncs(interceptor.Funcs{
		// The apiserver's authorizer: nobody here may "bind" the ClusterRole outright.
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if sar, ok := obj.(*authorizationv1.SubjectAccessReview); ok {
				sar.Status.Allowed = false
				return nil
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	v := &RoleBindingValidator{Reader: c, Client: c, RBAC: &RBACCache{}, // never started
		Config: config.Config{Roles: map[string]string{"developer": "tenant-developer"}}}

	exp := metav1.NewTime(time.Now().Add(time.Hour))
	rb := &tenancyv1alpha1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-acme", Name: "grant"},
		Spec: tenancyv1alpha1.RoleBindingSpec{Role: "developer", ExpiresAt: &exp,
			Subjects: []tenancyv1alpha1.Subject{{Kind: tenancyv1alpha1.SubjectUser, Name: "acme:dev"}}},
	}
	raw, err := json.Marshal(rb)
	if err != nil {
		t.Fatal(err)
	}
	request := func(user authenticationv1.UserInfo) admission.Request {
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Create,
			Namespace: "tenant-acme", UserInfo: user, Object: runtime.RawExtension{Raw: raw}}}
	}

	resp := v.Handle(context.Background(), request(authenticationv1.UserInfo{Username: "acme:lead"}))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError ||
		!strings.Contains(resp.Result.Message, ErrRBACNotSynced.Error()) {
		t.Errorf("before the RBAC cache synced: %+v; want refused with %q", resp.Result, ErrRBACNotSynced)
	}
	if resp := v.Handle(context.Background(), request(authenticationv1.UserInfo{Username: "root", Groups: []string{"system:masters"}})); !resp.Allowed {
		t.Errorf("system:masters needs no RBAC read but was refused: %+v", resp.Result)
	}
}
