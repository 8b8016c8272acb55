package access

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/golden"
)

func acme(spec tenancyv1alpha1.TenantSpec) *tenancyv1alpha1.Tenant {
	return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", UID: "0000-acme"}, Spec: spec}
}

var fullSpec = tenancyv1alpha1.TenantSpec{
	Owners: []tenancyv1alpha1.Subject{
		{Kind: tenancyv1alpha1.SubjectUser, Name: "oidc:alice@acme.example"},
		{Kind: tenancyv1alpha1.SubjectGroup, Name: "oidc:acme-admins"},
		{Kind: tenancyv1alpha1.SubjectServiceAccount, Name: "deployer", Namespace: "ci"},
	},
	SSO: &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{
		{Group: "oidc:acme-support", Role: "viewer"},
		{Group: "oidc:acme-devs", Role: "developer"},
		{Group: "oidc:acme-admins", Role: "admin"},
		{Group: "oidc:acme-qa", Role: "developer"},
	}},
}

func TestAccessGolden(t *testing.T) {
	cfg := config.Default()
	cases := map[string]struct {
		tenant *tenancyv1alpha1.Tenant // the Tenant as a user wrote it
	}{
		"full":   {tenant: acme(fullSpec)},
		"nobody": {tenant: acme(tenancyv1alpha1.TenantSpec{})},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var objs []any
			for _, rb := range RoleBindings(tc.tenant, "tenant-acme", cfg) {
				objs = append(objs, rb)
			}
			if cr := MemberClusterRole(tc.tenant); cr != nil {
				objs = append(objs, cr)
			}
			if crb := MemberClusterRoleBinding(tc.tenant, cfg); crb != nil {
				objs = append(objs, crb)
			}
			golden.Assert(t, name, objs...)
		})
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]struct {
		spec   tenancyv1alpha1.TenantSpec // the Tenant's spec
		roles  map[string]string          // the operator's allowed roles
		wantOK bool                       // whether the spec can be acted on
	}{
		"default roles":              {spec: fullSpec, roles: config.Default().Roles, wantOK: true},
		"SSO role not allowed":       {spec: fullSpec, roles: map[string]string{"admin": "tenant-admin", "viewer": "tenant-viewer"}},
		"owners but no admin role":   {spec: fullSpec, roles: map[string]string{"viewer": "tenant-viewer", "developer": "d"}},
		"nobody to bind, any config": {spec: tenancyv1alpha1.TenantSpec{}, roles: map[string]string{"viewer": "v"}, wantOK: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg, ok := Validate(acme(tc.spec), config.Config{Roles: tc.roles})
			if ok != tc.wantOK {
				t.Errorf("Validate = (%q, %v), want ok=%v", msg, ok, tc.wantOK)
			}
			if !ok && msg == "" {
				t.Error("a refusal must say why")
			}
		})
	}
}

func TestGrantGolden(t *testing.T) {
	rb := &tenancyv1alpha1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-dev", Namespace: "tenant-acme", UID: "0000-rb"},
		Spec: tenancyv1alpha1.RoleBindingSpec{Role: "developer", Subjects: []tenancyv1alpha1.Subject{
			{Kind: tenancyv1alpha1.SubjectUser, Name: "acme:alice@acme.com"},
			{Kind: tenancyv1alpha1.SubjectGroup, Name: "acme:oncall"},
			{Kind: tenancyv1alpha1.SubjectServiceAccount, Name: "ci", Namespace: "tenant-acme"},
		}},
	}
	golden.Assert(t, "grant", Grant(rb, "acme", "tenant-developer"))
}
