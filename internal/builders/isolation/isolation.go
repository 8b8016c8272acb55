// Package isolation builds the tenant's boundary: its namespace with Pod Security labels, the
// ResourceQuota and LimitRange, and the NetworkPolicies that fence it off from every other tenant.
package isolation

import (
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders"
	"github.com/tenantctl/tenant-operator/internal/config"
)

// Names of the objects in the tenant namespace.
const (
	QuotaName             = "tenant-quota"
	LimitRangeName        = "tenant-limits"
	DefaultDenyPolicyName = "tenant-default-deny"
	AllowPolicyName       = "tenant-allow"
)

// Pod Security admission labels.
const (
	psaEnforce        = "pod-security.kubernetes.io/enforce"
	psaEnforceVersion = "pod-security.kubernetes.io/enforce-version"
	psaAudit          = "pod-security.kubernetes.io/audit"
	psaWarn           = "pod-security.kubernetes.io/warn"
)

// NamespaceName is the name of the tenant's namespace when none exists yet: the spec's, or the
// configured prefix followed by the tenant name.
func NamespaceName(t *tenancyv1alpha1.Tenant, cfg config.Config) string {
	if t.Spec.Namespace.Name != "" {
		return t.Spec.Namespace.Name
	}
	return cfg.NamespacePrefix + t.Name
}

// Namespace is the tenant's namespace: the spec's labels and annotations, then the operator's own
// labels, which always win.
func Namespace(t *tenancyv1alpha1.Tenant, name string) *corev1.Namespace {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: builders.ObjectMeta(t, "", name),
	}
	labels := make(map[string]string, len(t.Spec.Namespace.Labels)+len(ns.Labels)+4)
	for k, v := range t.Spec.Namespace.Labels {
		labels[k] = string(v)
	}
	maps.Copy(labels, ns.Labels)
	level := string(t.Spec.Isolation.PodSecurity)
	if level == "" {
		level = string(tenancyv1alpha1.PodSecurityRestricted)
	}
	labels[psaEnforce] = level
	labels[psaEnforceVersion] = "latest"
	labels[psaAudit] = level
	labels[psaWarn] = level
	ns.Labels = labels
	if len(t.Spec.Namespace.Annotations) > 0 {
		ns.Annotations = make(map[string]string, len(t.Spec.Namespace.Annotations))
		for k, v := range t.Spec.Namespace.Annotations {
			ns.Annotations[k] = string(v)
		}
	}
	return ns
}

// ResourceQuota holds the tenant to its quota: the spec's, else the configured default. It returns
// nil when neither sets a limit.
func ResourceQuota(t *tenancyv1alpha1.Tenant, namespace string, cfg config.Config) *corev1.ResourceQuota {
	hard := cfg.DefaultQuota
	if t.Spec.Quota != nil {
		hard = t.Spec.Quota.Hard
	}
	if len(hard) == 0 {
		return nil
	}
	return &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: builders.ObjectMeta(t, namespace, QuotaName),
		Spec:       corev1.ResourceQuotaSpec{Hard: hard.DeepCopy()},
	}
}

// LimitRange sets container defaults: the spec's, else the configured default. It returns nil when
// neither sets anything.
func LimitRange(t *tenancyv1alpha1.Tenant, namespace string, cfg config.Config) *corev1.LimitRange {
	item := corev1.LimitRangeItem{
		Type:           corev1.LimitTypeContainer,
		Default:        cfg.DefaultLimits.Default,
		DefaultRequest: cfg.DefaultLimits.DefaultRequest,
		Max:            cfg.DefaultLimits.Max,
	}
	if l := t.Spec.Limits; l != nil {
		item.Default, item.DefaultRequest, item.Max = l.Default, l.DefaultRequest, l.Max
	}
	if len(item.Default)+len(item.DefaultRequest)+len(item.Max) == 0 {
		return nil
	}
	item.Default, item.DefaultRequest, item.Max = item.Default.DeepCopy(), item.DefaultRequest.DeepCopy(), item.Max.DeepCopy()
	return &corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: builders.ObjectMeta(t, namespace, LimitRangeName),
		Spec:       corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{item}},
	}
}

// NetworkPolicies fence the namespace. The default-deny policy stands alone, so that losing the
// allow policy fails closed. The allow policy lets in the tenant's own pods, the trusted
// namespaces and the spec's peers; in DenyAll mode it also allows egress to the same, to DNS and to
// the platform's services (cfg.PlatformEgress).
func NetworkPolicies(t *tenancyv1alpha1.Tenant, namespace string, cfg config.Config) []*networkingv1.NetworkPolicy {
	types := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	denyAll := t.Spec.Isolation.NetworkPolicy == tenancyv1alpha1.NetworkPolicyDenyAll
	if denyAll {
		types = append(types, networkingv1.PolicyTypeEgress)
	}
	deny := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: builders.ObjectMeta(t, namespace, DefaultDenyPolicyName),
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, PolicyTypes: types},
	}

	sameNamespace := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}}
	peers := []networkingv1.NetworkPolicyPeer{sameNamespace}
	if trusted := trustedPeer(cfg.TrustedNamespaces); trusted != nil {
		peers = append(peers, *trusted)
	}
	ingressPeers := append([]networkingv1.NetworkPolicyPeer{}, peers...)
	for _, p := range t.Spec.Isolation.AllowFrom {
		ingressPeers = append(ingressPeers, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: p.NamespaceSelector.DeepCopy(),
			PodSelector:       p.PodSelector.DeepCopy(),
		})
	}
	allow := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: builders.ObjectMeta(t, namespace, AllowPolicyName),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: types,
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: ingressPeers}},
		},
	}
	if denyAll {
		udp, tcp, dns := corev1.ProtocolUDP, corev1.ProtocolTCP, intstr.FromInt32(53)
		allow.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{
			{To: peers},
			{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
			},
		}
		for i := range cfg.PlatformEgress {
			allow.Spec.Egress = append(allow.Spec.Egress, *cfg.PlatformEgress[i].DeepCopy())
		}
	}
	return []*networkingv1.NetworkPolicy{deny, allow}
}

func trustedPeer(namespaces []string) *networkingv1.NetworkPolicyPeer {
	if len(namespaces) == 0 {
		return nil
	}
	values := append([]string{}, namespaces...)
	sort.Strings(values)
	return &networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: values,
		}},
	}}
}

// EgressWarning is what admission tells the author of a DenyAll Tenant with a database when the
// platform configures no egress for it: CloudNativePG's instances could not reach the API server
// (nor, with backups, the object store), so the database would never become ready.
func EgressWarning(t *tenancyv1alpha1.Tenant, cfg config.Config) string {
	if t.Spec.Isolation.NetworkPolicy != tenancyv1alpha1.NetworkPolicyDenyAll || t.Spec.Database == nil || len(cfg.PlatformEgress) > 0 {
		return ""
	}
	return "spec.isolation.networkPolicy: DenyAll blocks the database's egress to the Kubernetes API server and the backup object store, and the operator configuration has no platformEgress to allow them: the database will not become ready"
}
