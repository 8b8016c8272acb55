package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/builders/access"
	"github.com/tenantctl/tenant-operator/internal/builders/isolation"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	var err error
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// TestManagerSmoke starts the manager exactly as main.go builds it (leader election on, the
// operator's own RBAC) and checks what a user checks after `kubectl apply` of a Tenant: it becomes
// Ready for the generation they applied, neither Reconciling nor Stalled; its namespace carries the
// tenant label and the Pod Security labels; the quota, limit range and network policies are there
// with the configured defaults; the owners and SSO groups are bound to the ClusterRoles of their
// roles; a grant (rolebindings.tenancy.tenantctl.io) binds its subject; and an invalid edit is
// reported with its reason and Stalled, not retried. It also checks that the manager's scheme knows
// every kind it will manage.
func TestManagerSmoke(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	admin, err := client.New(env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	opConfig, err := env.OperatorConfig(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	grantLeaderElection(t, admin, "default")
	cfg := config.Default()
	mgr, err := controllers.New(opConfig, controllers.Options{
		MetricsAddr:          "0",
		ProbeAddr:            "0",
		LeaderElection:       true,
		LeaderElectionNS:     "default",
		MaxConcurrentTenants: 2,
		Config:               cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with an error: %v", err)
		}
	})

	c := admin
	for _, obj := range []client.Object{&tenancyv1alpha1.Tenant{}, &tenancyv1alpha1.RoleBinding{},
		&cnpgv1.Cluster{}, &cnpgv1.Database{}, &externalsecrets.ExternalSecret{}, &externalsecrets.SecretStore{}, &externalsecrets.PushSecret{}} {
		if _, err := c.RESTMapper().RESTMapping(mustGVK(t, mgr.GetClient(), obj).GroupKind()); err != nil {
			t.Errorf("the apiserver does not serve %T: %v", obj, err)
		}
	}

	tnt := &tenancyv1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke"},
		Spec: tenancyv1alpha1.TenantSpec{
			Owners: []tenancyv1alpha1.Subject{
				{Kind: tenancyv1alpha1.SubjectUser, Name: "oidc:alice@smoke.example"},
				{Kind: tenancyv1alpha1.SubjectGroup, Name: "oidc:smoke-admins"},
				{Kind: tenancyv1alpha1.SubjectServiceAccount, Name: "deployer", Namespace: "ci"},
			},
			SSO: &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{
				{Group: "oidc:smoke-devs", Role: "developer"},
			}},
		},
	}
	if err := c.Create(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	const namespace = "tenant-smoke"
	got := &tenancyv1alpha1.Tenant{}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(tnt), got); err != nil {
			return err
		}
		if got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status.observedGeneration is %d, the spec is at generation %d", got.Status.ObservedGeneration, got.Generation)
		}
		return conditionsAre(got, map[string]wantCondition{
			tenancyv1alpha1.ConditionReady:          {metav1.ConditionTrue, tenancyv1alpha1.ReasonReady},
			tenancyv1alpha1.ConditionReconciling:    {metav1.ConditionFalse, tenancyv1alpha1.ReasonReady},
			tenancyv1alpha1.ConditionStalled:        {metav1.ConditionFalse, tenancyv1alpha1.ReasonReady},
			tenancyv1alpha1.ConditionNamespaceReady: {metav1.ConditionTrue, tenancyv1alpha1.ReasonReady},
			tenancyv1alpha1.ConditionIsolationReady: {metav1.ConditionTrue, tenancyv1alpha1.ReasonReady},
			tenancyv1alpha1.ConditionRBACReady:      {metav1.ConditionTrue, tenancyv1alpha1.ReasonReady},
			tenancyv1alpha1.ConditionDatabaseReady:  {metav1.ConditionTrue, tenancyv1alpha1.ReasonNotRequested},
			tenancyv1alpha1.ConditionSecretsReady:   {metav1.ConditionTrue, tenancyv1alpha1.ReasonNotRequested},
		})
	})
	if got.Status.Namespace != namespace || got.Status.Phase != tenancyv1alpha1.TenantReady {
		t.Errorf("status.namespace = %q, status.phase = %q; want %q, Ready", got.Status.Namespace, got.Status.Phase, namespace)
	}

	// The namespace: the tenant's, fenced by Pod Security at the spec's default level.
	ns := &corev1.Namespace{}
	get(t, c, "", namespace, ns)
	for key, want := range map[string]string{
		tenancyv1alpha1.LabelTenant:                  "smoke",
		tenancyv1alpha1.LabelManagedBy:               tenancyv1alpha1.ManagedByValue,
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/audit":           "restricted",
		"pod-security.kubernetes.io/warn":            "restricted",
	} {
		if got, ok := ns.Labels[key]; !ok || got != want {
			t.Errorf("namespace %s: label %s = %q (set: %t), want %q", namespace, key, got, ok, want)
		}
	}

	// Quota and limits: the configured defaults, since the spec sets none.
	quota := &corev1.ResourceQuota{}
	get(t, c, namespace, isolation.QuotaName, quota)
	if !equality.Semantic.DeepEqual(quota.Spec.Hard, cfg.DefaultQuota) {
		t.Errorf("ResourceQuota %s: hard = %v, want the configured default %v", isolation.QuotaName, quota.Spec.Hard, cfg.DefaultQuota)
	}
	limits := &corev1.LimitRange{}
	get(t, c, namespace, isolation.LimitRangeName, limits)
	if l := limits.Spec.Limits; len(l) != 1 || l[0].Type != corev1.LimitTypeContainer ||
		!equality.Semantic.DeepEqual(l[0].Default, cfg.DefaultLimits.Default) ||
		!equality.Semantic.DeepEqual(l[0].DefaultRequest, cfg.DefaultLimits.DefaultRequest) {
		t.Errorf("LimitRange %s: %+v, want container defaults %v and requests %v", isolation.LimitRangeName, l, cfg.DefaultLimits.Default, cfg.DefaultLimits.DefaultRequest)
	}

	// The fence: a default-deny of ingress for every pod, and an allow policy that lets in the
	// namespace's own pods.
	deny := &networkingv1.NetworkPolicy{}
	get(t, c, namespace, isolation.DefaultDenyPolicyName, deny)
	if len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 || len(deny.Spec.Ingress) != 0 ||
		!slices.Contains(deny.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("NetworkPolicy %s does not deny all ingress to every pod: %+v", isolation.DefaultDenyPolicyName, deny.Spec)
	}
	allow := &networkingv1.NetworkPolicy{}
	get(t, c, namespace, isolation.AllowPolicyName, allow)
	if len(allow.Spec.Ingress) != 1 || !slices.ContainsFunc(allow.Spec.Ingress[0].From, func(p networkingv1.NetworkPolicyPeer) bool {
		return p.NamespaceSelector == nil && p.PodSelector != nil && len(p.PodSelector.MatchLabels)+len(p.PodSelector.MatchExpressions) == 0
	}) {
		t.Errorf("NetworkPolicy %s does not let the namespace's own pods in: %+v", isolation.AllowPolicyName, allow.Spec.Ingress)
	}

	// Access: the owners to the admin role's ClusterRole, the SSO group to the developer role's.
	expectBinding(t, c, namespace, access.OwnersBindingName, cfg.Roles["admin"], []rbacv1.Subject{
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "oidc:alice@smoke.example"},
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "oidc:smoke-admins"},
		{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: "ci"},
	})
	expectBinding(t, c, namespace, "tenant-sso-developer", cfg.Roles["developer"], []rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "oidc:smoke-devs"},
	})

	// A grant in the tenant's namespace binds its subject to the viewer role's ClusterRole.
	rb := &tenancyv1alpha1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke-viewer", Namespace: namespace},
		Spec: tenancyv1alpha1.RoleBindingSpec{Role: "viewer", Subjects: []tenancyv1alpha1.Subject{
			{Kind: tenancyv1alpha1.SubjectUser, Name: "oidc:bob@smoke.example"}}},
	}
	if err := c.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		got := &tenancyv1alpha1.RoleBinding{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(rb), got); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != got.Generation {
			return fmt.Errorf("RoleBinding %s is not Ready for generation %d: %+v", rb.Name, got.Generation, ready)
		}
		return nil
	})
	expectBinding(t, c, namespace, access.GrantName(rb.Name), cfg.Roles["viewer"], []rbacv1.Subject{
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "oidc:bob@smoke.example"},
	})

	// An edit the operator cannot honour (a role its configuration does not allow) passes
	// admission; it is reported on the new generation with its reason, and Stalled.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"sso":{"groups":[{"group":"oidc:smoke-devs","role":"superuser"}]}}}`))
	if err := c.Patch(ctx, tnt, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(tnt), got); err != nil {
			return err
		}
		return conditionsAre(got, map[string]wantCondition{
			tenancyv1alpha1.ConditionRBACReady:   {metav1.ConditionFalse, tenancyv1alpha1.ReasonInvalidSpec},
			tenancyv1alpha1.ConditionReady:       {metav1.ConditionFalse, tenancyv1alpha1.ReasonNotReady},
			tenancyv1alpha1.ConditionStalled:     {metav1.ConditionTrue, tenancyv1alpha1.ReasonNotReady},
			tenancyv1alpha1.ConditionReconciling: {metav1.ConditionFalse, tenancyv1alpha1.ReasonNotReady},
		})
	})
	if msg := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionRBACReady).Message; !strings.Contains(msg, `spec.sso.groups[0].role: "superuser"`) {
		t.Errorf("RBACReady does not name the field and the role refused: %q", msg)
	}
}

// wantCondition is the status and reason a condition must have.
type wantCondition struct {
	status metav1.ConditionStatus
	reason string
}

// conditionsAre says how t's conditions differ from want; each must also be for t's generation.
func conditionsAre(t *tenancyv1alpha1.Tenant, want map[string]wantCondition) error {
	var errs []error
	for typ, w := range want {
		c := meta.FindStatusCondition(t.Status.Conditions, typ)
		switch {
		case c == nil:
			errs = append(errs, fmt.Errorf("%s: missing", typ))
		case c.ObservedGeneration != t.Generation:
			errs = append(errs, fmt.Errorf("%s: for generation %d, the spec is at %d", typ, c.ObservedGeneration, t.Generation))
		case c.Status != w.status || c.Reason != w.reason:
			errs = append(errs, fmt.Errorf("%s=%s %s (%s), want %s %s", typ, c.Status, c.Reason, c.Message, w.status, w.reason))
		}
	}
	return errors.Join(errs...)
}

func get(t *testing.T, c client.Client, namespace, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		t.Fatalf("%T %s/%s: %v", obj, namespace, name, err)
	}
}

// expectBinding checks that the RBAC RoleBinding binds exactly these subjects to this ClusterRole.
func expectBinding(t *testing.T, c client.Client, namespace, name, clusterRole string, subjects []rbacv1.Subject) {
	t.Helper()
	b := &rbacv1.RoleBinding{}
	get(t, c, namespace, name, b)
	if want := (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole}); b.RoleRef != want {
		t.Errorf("RoleBinding %s/%s refers to %+v, want %+v", namespace, name, b.RoleRef, want)
	}
	key := func(s rbacv1.Subject) string { return s.Kind + "/" + s.Namespace + "/" + s.Name }
	got := slices.SortedFunc(slices.Values(b.Subjects), func(a, b rbacv1.Subject) int { return strings.Compare(key(a), key(b)) })
	want := slices.SortedFunc(slices.Values(subjects), func(a, b rbacv1.Subject) int { return strings.Compare(key(a), key(b)) })
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("RoleBinding %s/%s binds %+v, want %+v", namespace, name, got, want)
	}
}

// grantLeaderElection gives the operator what config/rbac/leader_election_role.yaml gives it in
// its own namespace: Leases, and Events about them.
func grantLeaderElection(t *testing.T, c client.Client, namespace string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "leader-election", Namespace: namespace}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "leader-election", Namespace: namespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "leader-election"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "tenant-operator-controller-manager", Namespace: "tenant-operator-system"}}}
	for _, obj := range []client.Object{role, binding} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
}

func mustGVK(t *testing.T, c client.Client, obj client.Object) schema.GroupVersionKind {
	t.Helper()
	g, err := c.GroupVersionKindFor(obj)
	if err != nil {
		t.Fatalf("the manager's scheme does not know %T: %v", obj, err)
	}
	return g
}
