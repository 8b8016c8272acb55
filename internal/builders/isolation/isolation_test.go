package isolation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/golden"
)

func tenant(spec tenancyv1alpha1.TenantSpec) *tenancyv1alpha1.Tenant {
	return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", UID: "0000-acme"}, Spec: spec}
}

func TestIsolationGolden(t *testing.T) {
	cfg := config.Default()
	cfg.TrustedNamespaces = []string{"monitoring", "cnpg-system"}
	// The platform's services a DenyAll tenant reaches (the API server, the object store); a
	// DenyIngress tenant's egress is open, so "defaults" has none of it.
	tcp, apiserver, s3 := corev1.ProtocolTCP, intstr.FromInt32(6443), intstr.FromInt32(9000)
	cfg.PlatformEgress = []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.1/32"}}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &apiserver}, {Protocol: &tcp, Port: &s3}},
	}}
	cases := map[string]struct {
		tenant *tenancyv1alpha1.Tenant // the Tenant as a user wrote it (after API defaults)
	}{
		"defaults": {tenant: tenant(tenancyv1alpha1.TenantSpec{})},
		"full": {tenant: tenant(tenancyv1alpha1.TenantSpec{
			Namespace: tenancyv1alpha1.NamespaceSpec{Name: "acme-prod", Labels: map[string]tenancyv1alpha1.LabelValue{"team": "payments"},
				Annotations: map[string]tenancyv1alpha1.AnnotationValue{"cost-center": "42"}},
			Isolation: tenancyv1alpha1.IsolationSpec{
				NetworkPolicy: tenancyv1alpha1.NetworkPolicyDenyAll,
				PodSecurity:   tenancyv1alpha1.PodSecurityBaseline,
				AllowFrom: []tenancyv1alpha1.NetworkPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "router"}},
				}},
			},
			Quota:  &tenancyv1alpha1.QuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("16")}},
			Limits: &tenancyv1alpha1.LimitsSpec{Max: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")}},
		})},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := NamespaceName(tc.tenant, cfg)
			objs := []any{Namespace(tc.tenant, ns), ResourceQuota(tc.tenant, ns, cfg),
				LimitRange(tc.tenant, ns, cfg)}
			for _, p := range NetworkPolicies(tc.tenant, ns, cfg) {
				objs = append(objs, p)
			}
			golden.Assert(t, name, objs...)
		})
	}
}

func TestOperatorLabelsWinOverTheSpec(t *testing.T) {
	// Admission refuses reserved labels in the spec; the builder does not rely on it.
	tnt := tenant(tenancyv1alpha1.TenantSpec{Namespace: tenancyv1alpha1.NamespaceSpec{Labels: map[string]tenancyv1alpha1.LabelValue{
		tenancyv1alpha1.LabelTenant: "someone-else", "pod-security.kubernetes.io/enforce": "privileged"}}})
	ns := Namespace(tnt, "tenant-acme")
	if ns.Labels[tenancyv1alpha1.LabelTenant] != "acme" || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("labels = %v", ns.Labels)
	}
}

func TestNothingToLimitMeansNoObject(t *testing.T) {
	cfg := config.Config{NamespacePrefix: "t-"}
	tnt := tenant(tenancyv1alpha1.TenantSpec{})
	if q := ResourceQuota(tnt, "t-acme", cfg); q != nil {
		t.Errorf("quota without limits = %+v, want nil", q)
	}
	if l := LimitRange(tnt, "t-acme", cfg); l != nil {
		t.Errorf("limit range without limits = %+v, want nil", l)
	}
}

func FuzzNamespace(f *testing.F) {
	f.Add("acme", "tenant-acme", "team", "blue", "restricted")
	f.Fuzz(func(t *testing.T, name, ns, key, value, level string) {
		tnt := tenant(tenancyv1alpha1.TenantSpec{
			Namespace: tenancyv1alpha1.NamespaceSpec{Labels: map[string]tenancyv1alpha1.LabelValue{key: tenancyv1alpha1.LabelValue(value)}},
			Isolation: tenancyv1alpha1.IsolationSpec{PodSecurity: tenancyv1alpha1.PodSecurityLevel(level)},
		})
		tnt.Name = name
		got := Namespace(tnt, ns)
		// Whatever the spec says, the operator's own labels are the operator's.
		if got.Labels[tenancyv1alpha1.LabelTenant] != name || got.Labels[tenancyv1alpha1.LabelManagedBy] != tenancyv1alpha1.ManagedByValue {
			t.Fatalf("ownership labels overridden: %v", got.Labels)
		}
		if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].Name != name {
			t.Fatalf("owner reference = %v", got.OwnerReferences)
		}
	})
}

func TestEgressWarningOnlyForADenyAllDatabaseWithoutPlatformEgress(t *testing.T) {
	db := &tenancyv1alpha1.DatabaseSpec{}
	open := config.Default()
	fenced := config.Default()
	fenced.PlatformEgress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.1/32"}}}}}
	for _, tc := range []struct {
		name string
		spec tenancyv1alpha1.TenantSpec
		cfg  config.Config
		warn bool
	}{
		{"DenyAll database, no platform egress", tenancyv1alpha1.TenantSpec{Isolation: tenancyv1alpha1.IsolationSpec{NetworkPolicy: tenancyv1alpha1.NetworkPolicyDenyAll}, Database: db}, open, true},
		{"DenyAll database, platform egress", tenancyv1alpha1.TenantSpec{Isolation: tenancyv1alpha1.IsolationSpec{NetworkPolicy: tenancyv1alpha1.NetworkPolicyDenyAll}, Database: db}, fenced, false},
		{"DenyAll without a database", tenancyv1alpha1.TenantSpec{Isolation: tenancyv1alpha1.IsolationSpec{NetworkPolicy: tenancyv1alpha1.NetworkPolicyDenyAll}}, open, false},
		{"DenyIngress database", tenancyv1alpha1.TenantSpec{Isolation: tenancyv1alpha1.IsolationSpec{NetworkPolicy: tenancyv1alpha1.NetworkPolicyDenyIngress}, Database: db}, open, false},
	} {
		if got := EgressWarning(tenant(tc.spec), tc.cfg); (got != "") != tc.warn {
			t.Errorf("%s: warning %q, want one: %v", tc.name, got, tc.warn)
		}
	}
}
