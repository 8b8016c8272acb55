package tenant_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const wait = 30 * time.Second

func owner(kind tenancyv1alpha1.SubjectKind, name string) tenancyv1alpha1.Subject {
	return tenancyv1alpha1.Subject{Kind: kind, Name: name}
}

// as returns a client acting as the given user and groups.
func as(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	c, err := client.New(env.Impersonate(user, groups...), client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, obj client.Object, namespace, name string) {
	t.Helper()
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s/%s: %v", obj, namespace, name, err)
	}
}

func ownedByTenant(obj client.Object, tnt *tenancyv1alpha1.Tenant) bool {
	for _, r := range obj.GetOwnerReferences() {
		if r.Kind == "Tenant" && r.UID == tnt.UID && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

func TestCreateProvisionsTheTenantBoundary(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "alpha"},
		Spec: tenancyv1alpha1.TenantSpec{
			Owners:    []tenancyv1alpha1.Subject{owner("User", "alice"), owner("Group", "alpha-admins")},
			Namespace: tenancyv1alpha1.NamespaceSpec{Labels: map[string]tenancyv1alpha1.LabelValue{"team": "alpha"}},
			Quota:     &tenancyv1alpha1.QuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("3")}},
			SSO: &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{
				{Group: "alpha-devs", Role: "developer"}}},
		},
	})

	// What a user runs: kubectl wait returns once the tenant is Ready.
	out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "wait", "--for=condition=Ready",
		"tenant/alpha", "--timeout=60s").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl wait: %v: %s", err, out)
	}
	tnt := waitForReady(t, "alpha")
	if tnt.Status.Phase != tenancyv1alpha1.TenantReady || tnt.Status.Namespace != "tenant-alpha" ||
		tnt.Status.ObservedGeneration != tnt.Generation {
		t.Errorf("status = %+v", tnt.Status)
	}

	ns := &corev1.Namespace{}
	get(t, ns, "", "tenant-alpha")
	for k, v := range map[string]string{
		tenancyv1alpha1.LabelTenant:          "alpha",
		tenancyv1alpha1.LabelManagedBy:       tenancyv1alpha1.ManagedByValue,
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/audit":   "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
		"team":                               "alpha",
	} {
		if ns.Labels[k] != v {
			t.Errorf("namespace label %s = %q, want %q", k, ns.Labels[k], v)
		}
	}
	quota := &corev1.ResourceQuota{}
	get(t, quota, "tenant-alpha", "tenant-quota")
	if got := quota.Spec.Hard[corev1.ResourceRequestsCPU]; got.Cmp(resource.MustParse("3")) != 0 || len(quota.Spec.Hard) != 1 {
		t.Errorf("quota hard = %v, want only requests.cpu=3 from the spec", quota.Spec.Hard)
	}
	limits := &corev1.LimitRange{}
	get(t, limits, "tenant-alpha", "tenant-limits")
	if got := limits.Spec.Limits[0].Default[corev1.ResourceCPU]; got.String() != "500m" {
		t.Errorf("LimitRange default cpu = %s, want the configured default 500m", got.String())
	}
	deny, allow := &networkingv1.NetworkPolicy{}, &networkingv1.NetworkPolicy{}
	get(t, deny, "tenant-alpha", "tenant-default-deny")
	get(t, allow, "tenant-alpha", "tenant-allow")
	if len(deny.Spec.Ingress) != 0 || len(deny.Spec.PolicyTypes) != 1 || deny.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("default-deny policy = %+v", deny.Spec)
	}
	owners := &rbacv1.RoleBinding{}
	get(t, owners, "tenant-alpha", "tenant-owners")
	if owners.RoleRef.Name != "tenant-admin" || len(owners.Subjects) != 2 {
		t.Errorf("owners binding = %+v", owners)
	}
	devs := &rbacv1.RoleBinding{}
	get(t, devs, "tenant-alpha", "tenant-sso-developer")
	if devs.RoleRef.Name != "tenant-developer" || devs.Subjects[0].Name != "alpha-devs" {
		t.Errorf("SSO binding = %+v", devs)
	}
	member := &rbacv1.ClusterRoleBinding{}
	get(t, member, "", "tenantctl:tenant:alpha")
	for _, obj := range []client.Object{ns, quota, limits, deny, allow, owners, devs, member} {
		if !ownedByTenant(obj, tnt) {
			t.Errorf("%T %s has no controller owner reference to the Tenant", obj, obj.GetName())
		}
		if obj.GetLabels()[tenancyv1alpha1.LabelTenant] != "alpha" {
			t.Errorf("%T %s lacks the tenant label", obj, obj.GetName())
		}
	}

	// The readiness gauge counts it.
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	readyTenants := 0.0
	for _, f := range families {
		if f.GetName() == "tenant_operator_tenants" {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "ready" && l.GetValue() == "True" {
						readyTenants += m.GetGauge().GetValue()
					}
				}
			}
		}
	}
	if readyTenants < 1 {
		t.Errorf("tenant_operator_tenants{ready=\"True\"} = %v, want at least 1", readyTenants)
	}

	// Events are recorded for the transitions, against the Tenant.
	testenv.Eventually(t, wait, func() error {
		events, err := clientset.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Kind == "Tenant" && e.Regarding.Name == "alpha" && e.Action == tenancyv1alpha1.ConditionReady {
				return nil
			}
		}
		return fmt.Errorf("no Ready event for tenant alpha among %d events", len(events.Items))
	})
}

func TestSteadyStateSendsNoRequests(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "steady"},
		Spec: tenancyv1alpha1.TenantSpec{
			Database: dedicated(true),
			Owners:   []tenancyv1alpha1.Subject{owner("User", "sam")},
			SSO:      &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{{Group: "steady-viewers", Role: "viewer"}}},
		},
	})
	markClusterHealthy(t, "tenant-steady", nil) // stand-in for CloudNativePG
	tnt := waitForReady(t, "steady")
	// An annotation change wakes the controller without changing the spec.
	poke := func(i int) {
		count := reconcileCount(t)
		patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test/poke":"%d"}}}`, i)))
		if err := admin.Patch(ctx, tnt, patch); err != nil {
			t.Fatal(err)
		}
		waitForReconciles(t, count, 1)
	}
	// Warm up: passes still queued from the operator's own writes run before we start counting.
	poke(-2)
	poke(-1)
	before := resourceVersions(t, "tenant-steady", "steady")
	statusBefore := getTenant(t, "steady").Status

	mark := writes.mark()
	const passes = 5
	for i := 0; i < passes; i++ {
		poke(i)
	}
	// Not a write, and not a read either: every read of a pass is served by the informer cache.
	if w := writes.requestsSince(mark, "tenant-steady", "/tenants/steady", "tenantctl:tenant:steady", "/namespaces/tenant-steady"); len(w) > 0 {
		t.Errorf("%d passes over a steady tenant sent %d requests:\n%s", passes, len(w), strings.Join(w, "\n"))
	}
	after := resourceVersions(t, "tenant-steady", "steady")
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed resourceVersion in steady state: %s -> %s", k, v, after[k])
		}
	}
	if statusAfter := getTenant(t, "steady").Status; !equality.Semantic.DeepEqual(statusBefore, statusAfter) {
		t.Errorf("the status changed in steady state:\nbefore %+v\nafter  %+v", statusBefore, statusAfter)
	}
}

// resourceVersions of every object the tenant's operator manages.
func resourceVersions(t *testing.T, namespace, tenant string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	sel := client.MatchingLabels{tenancyv1alpha1.LabelTenant: tenant}
	for _, list := range []client.ObjectList{&corev1.NamespaceList{}, &corev1.ResourceQuotaList{}, &corev1.LimitRangeList{},
		&networkingv1.NetworkPolicyList{}, &rbacv1.RoleBindingList{}, &rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{},
		&cnpgv1.ClusterList{}, &cnpgv1.ScheduledBackupList{}} {
		if err := admin.List(ctx, list, sel); err != nil {
			t.Fatal(err)
		}
		items, _ := metaItems(list)
		for _, o := range items {
			out[fmt.Sprintf("%T %s/%s", o, o.GetNamespace(), o.GetName())] = o.GetResourceVersion()
		}
	}
	if len(out) < 9 {
		t.Fatalf("expected at least 9 managed objects for %s, found %v", tenant, out)
	}
	_ = namespace
	return out
}

func TestDriftIsRepaired(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "drift"},
		Spec:       tenancyv1alpha1.TenantSpec{Owners: []tenancyv1alpha1.Subject{owner("User", "dana")}},
	})
	waitForReady(t, "drift")
	const ns = "tenant-drift"

	t.Run("a deleted network policy comes back", func(t *testing.T) {
		deleteAndExpectRecreated(t, &networkingv1.NetworkPolicy{}, &networkingv1.NetworkPolicy{}, ns, "tenant-default-deny")
	})
	t.Run("an edited quota is restored", func(t *testing.T) {
		q := &corev1.ResourceQuota{}
		get(t, q, ns, "tenant-quota")
		q.Spec.Hard[corev1.ResourceRequestsCPU] = resource.MustParse("1000")
		if err := admin.Update(ctx, q); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, wait, func() error {
			again := &corev1.ResourceQuota{}
			if err := admin.Get(ctx, client.ObjectKeyFromObject(q), again); err != nil {
				return err
			}
			if got := again.Spec.Hard[corev1.ResourceRequestsCPU]; got.String() != "4" {
				return fmt.Errorf("requests.cpu is %s", got.String())
			}
			return nil
		})
	})
	t.Run("a deleted owner binding comes back", func(t *testing.T) {
		deleteAndExpectRecreated(t, &rbacv1.RoleBinding{}, &rbacv1.RoleBinding{}, ns, "tenant-owners")
	})
	t.Run("a weakened Pod Security label is restored", func(t *testing.T) {
		nsObj := &corev1.Namespace{}
		get(t, nsObj, "", ns)
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`))
		if err := admin.Patch(ctx, nsObj, patch); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, wait, func() error {
			again := &corev1.Namespace{}
			if err := admin.Get(ctx, client.ObjectKey{Name: ns}, again); err != nil {
				return err
			}
			if got := again.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
				return fmt.Errorf("enforce label is %q", got)
			}
			return nil
		})
	})
}

// deleteAndExpectRecreated deletes the object and waits for the operator to create it again (a new
// UID under the same name). obj and again are empty objects of the same kind.
func deleteAndExpectRecreated(t *testing.T, obj, again client.Object, namespace, name string) {
	t.Helper()
	ctx := context.Background()
	get(t, obj, namespace, name)
	if err := admin.Delete(ctx, obj); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(obj), again); err != nil {
			return err
		}
		if again.GetUID() == obj.GetUID() {
			return fmt.Errorf("%s not yet recreated", name)
		}
		return nil
	})
}

func TestNamespaceConflictTouchesNothing(t *testing.T) {
	ctx := context.Background()
	existing := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-gamma", Annotations: map[string]string{"owner": "someone else"}}}
	if err := admin.Create(ctx, existing); err != nil {
		t.Fatal(err)
	}
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "conflict-ok"}, Spec: tenancyv1alpha1.TenantSpec{}})
	waitForReady(t, "conflict-ok")
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "gamma"},
		Spec: tenancyv1alpha1.TenantSpec{Owners: []tenancyv1alpha1.Subject{owner("User", "mallory")}}})
	// A tenant that names another tenant's namespace is refused the same way.
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "squatter"},
		Spec: tenancyv1alpha1.TenantSpec{Namespace: tenancyv1alpha1.NamespaceSpec{Name: "tenant-conflict-ok"}}})

	got := waitForCondition(t, "gamma", tenancyv1alpha1.ConditionNamespaceReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonNamespaceConflict)
	if got.Status.Phase != tenancyv1alpha1.TenantDegraded {
		t.Errorf("phase = %s, want Degraded", got.Status.Phase)
	}
	// A conflict is a verdict: observedGeneration moves, so GitOps tools see Failed, not InProgress.
	testenv.Eventually(t, wait, func() error {
		if g := getTenant(t, "gamma"); g.Status.ObservedGeneration != g.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", g.Status.ObservedGeneration, g.Generation)
		}
		return nil
	})
	expectKstatus(t, "gamma", status.FailedStatus)
	waitForCondition(t, "gamma", tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonNotReady)
	waitForCondition(t, "gamma", tenancyv1alpha1.ConditionRBACReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonWaitingForNamespace)

	// Failing tenants never block the others.
	waitForReady(t, "conflict-ok")
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "conflict-later"}, Spec: tenancyv1alpha1.TenantSpec{}})
	waitForReady(t, "conflict-later")
	sq := waitForCondition(t, "squatter", tenancyv1alpha1.ConditionNamespaceReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonNamespaceConflict)
	if c := findCondition(sq, tenancyv1alpha1.ConditionNamespaceReady); !strings.Contains(c.Message, "belongs to tenant conflict-ok") {
		t.Errorf("message = %q", c.Message)
	}

	// The pre-existing namespace is untouched and nothing was created in it.
	after := &corev1.Namespace{}
	get(t, after, "", "tenant-gamma")
	if after.ResourceVersion != existing.ResourceVersion || len(after.OwnerReferences) != 0 {
		t.Errorf("the conflicting namespace was modified: rv %s -> %s, owners %v", existing.ResourceVersion, after.ResourceVersion, after.OwnerReferences)
	}
	for _, list := range []client.ObjectList{&corev1.ResourceQuotaList{}, &networkingv1.NetworkPolicyList{}, &rbacv1.RoleBindingList{}} {
		if err := admin.List(ctx, list, client.InNamespace("tenant-gamma")); err != nil {
			t.Fatal(err)
		}
		if items, _ := metaItems(list); len(items) != 0 {
			t.Errorf("the operator created %d %T in a namespace that is not the tenant's", len(items), list)
		}
	}
}

func findCondition(t *tenancyv1alpha1.Tenant, typ string) metav1.Condition {
	for _, c := range t.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

func TestTenantIdentitiesGetLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "priv-a"},
		Spec: tenancyv1alpha1.TenantSpec{
			Owners: []tenancyv1alpha1.Subject{owner("User", "owner-a")},
			SSO:    &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{{Group: "priv-a-devs", Role: "developer"}}},
		}})
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "priv-b"},
		Spec: tenancyv1alpha1.TenantSpec{Owners: []tenancyv1alpha1.Subject{owner("User", "owner-b")}}})
	waitForReady(t, "priv-a")
	waitForReady(t, "priv-b")

	ownerA := as(t, "owner-a")
	expectAllowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: want allowed, got %v", what, err)
		}
	}
	expectForbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: want Forbidden, got %v", what, err)
		}
	}
	expectAllowed("owner lists pods in their namespace", ownerA.List(ctx, &corev1.PodList{}, client.InNamespace("tenant-priv-a")))
	expectForbidden("owner lists pods in another tenant's namespace", ownerA.List(ctx, &corev1.PodList{}, client.InNamespace("tenant-priv-b")))
	q := &corev1.ResourceQuota{}
	get(t, q, "tenant-priv-a", "tenant-quota")
	q.Spec.Hard[corev1.ResourceRequestsCPU] = resource.MustParse("100")
	expectForbidden("owner edits their quota", ownerA.Update(ctx, q))
	np := &networkingv1.NetworkPolicy{}
	get(t, np, "tenant-priv-a", "tenant-default-deny")
	expectForbidden("owner deletes their network policy", ownerA.Delete(ctx, np))
	ns := &corev1.Namespace{}
	get(t, ns, "", "tenant-priv-a")
	expectForbidden("owner relabels their namespace", ownerA.Patch(ctx, ns,
		client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`))))
	expectAllowed("owner gets their own Tenant", ownerA.Get(ctx, client.ObjectKey{Name: "priv-a"}, &tenancyv1alpha1.Tenant{}))
	expectForbidden("owner gets another Tenant", ownerA.Get(ctx, client.ObjectKey{Name: "priv-b"}, &tenancyv1alpha1.Tenant{}))
	expectForbidden("owner lists tenants", ownerA.List(ctx, &tenancyv1alpha1.TenantList{}))
	expectForbidden("owner writes a CNPG Cluster", ownerA.Create(ctx, cnpgCluster("tenant-priv-a")))
	expectForbidden("owner reads Secrets in another tenant", ownerA.List(ctx, &corev1.SecretList{}, client.InNamespace("tenant-priv-b")))

	dev := as(t, "dev-1", "priv-a-devs")
	expectAllowed("an SSO developer creates a Deployment", dev.Create(ctx, deployment("tenant-priv-a"), client.DryRunAll))
	expectForbidden("an SSO developer creates a Deployment in another tenant", dev.Create(ctx, deployment("tenant-priv-b"), client.DryRunAll))
	expectForbidden("an SSO developer grants access", dev.Create(ctx, &tenancyv1alpha1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "self-grant", Namespace: "tenant-priv-a"},
		Spec:       tenancyv1alpha1.RoleBindingSpec{Role: "admin", Subjects: []tenancyv1alpha1.Subject{owner("User", "dev-1")}},
	}, client.DryRunAll))
}

func deployment(namespace string) *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
}

func TestOwnershipLabelsAreTheOperatorsAlone(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "labels"},
		Spec: tenancyv1alpha1.TenantSpec{Owners: []tenancyv1alpha1.Subject{owner("User", "labels-admin")}}})
	tnt := waitForReady(t, "labels")
	rogue := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rogue"}}
	if err := admin.Create(ctx, rogue); err != nil {
		t.Fatal(err)
	}
	tenantAdmin := as(t, "labels-admin")
	label := func(name, value string) client.Patch {
		return client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, tenancyv1alpha1.LabelTenant, value)))
	}
	nsRef := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}

	// As the tenant's admin: refused by RBAC before admission.
	for _, name := range []string{"kube-system", "default", "rogue"} {
		if err := tenantAdmin.Patch(ctx, nsRef(name), label(name, `"labels"`)); !apierrors.IsForbidden(err) {
			t.Errorf("tenant admin labelling %s: want Forbidden, got %v", name, err)
		}
	}
	if err := tenantAdmin.Patch(ctx, nsRef("tenant-labels"), label("", "null")); !apierrors.IsForbidden(err) {
		t.Errorf("tenant admin removing the tenant label: want Forbidden, got %v", err)
	}

	// As a cluster admin who is not the operator: RBAC allows it, the admission policy refuses it.
	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "managed by tenant-operator alone") {
			t.Errorf("%s: want refusal by the tenant-ownership policy, got %v", what, err)
		}
	}
	refused("labelling kube-system into a tenant", admin.Patch(ctx, nsRef("kube-system"), label("kube-system", `"labels"`)))
	refused("labelling default into a tenant", admin.Patch(ctx, nsRef("default"), label("default", `"labels"`)))
	refused("patching an unowned namespace to join the tenant", admin.Patch(ctx, nsRef("rogue"), label("rogue", `"labels"`)))
	refused("removing the tenant label from the tenant's namespace", admin.Patch(ctx, nsRef("tenant-labels"), label("", "null")))
	refused("creating a namespace pre-labelled for the tenant", admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "sneaky", Labels: map[string]string{tenancyv1alpha1.LabelTenant: "labels"}}}))
	refused("stripping the Tenant owner reference", admin.Patch(ctx, nsRef("tenant-labels"),
		client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"ownerReferences":null}}`))))
	forged := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"tenancy.tenantctl.io/v1alpha1","kind":"Tenant","name":"labels","uid":%q}]}}`, tnt.UID)
	refused("forging a Tenant owner reference on kube-system", admin.Patch(ctx, nsRef("kube-system"),
		client.RawPatch(types.MergePatchType, []byte(forged))))

	// And the tenant is still whole.
	waitForReady(t, "labels")
	ns := &corev1.Namespace{}
	get(t, ns, "", "tenant-labels")
	if ns.Labels[tenancyv1alpha1.LabelTenant] != "labels" || !ownedByTenant(ns, tnt) {
		t.Errorf("the tenant's namespace lost its ownership: labels %v, owners %v", ns.Labels, ns.OwnerReferences)
	}
}

func TestRetainKeepsTheNamespaceAndRevokesAccess(t *testing.T) {
	ctx := context.Background()
	spec := tenancyv1alpha1.TenantSpec{Owners: []tenancyv1alpha1.Subject{owner("User", "rita")}}
	first := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "keeper"}, Spec: spec})
	waitForReady(t, "keeper")
	ns := &corev1.Namespace{}
	get(t, ns, "", "tenant-keeper")
	rita := as(t, "rita")
	if err := rita.List(ctx, &corev1.PodList{}, client.InNamespace("tenant-keeper")); err != nil {
		t.Fatalf("owner cannot list pods before deletion: %v", err)
	}

	if err := admin.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		err := admin.Get(ctx, client.ObjectKey{Name: "keeper"}, &tenancyv1alpha1.Tenant{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("Tenant still there: %v", err)
	})

	retained := &corev1.Namespace{}
	get(t, retained, "", "tenant-keeper")
	if retained.UID != ns.UID || !retained.DeletionTimestamp.IsZero() {
		t.Fatalf("the namespace was not kept: uid %s -> %s, deleting %v", ns.UID, retained.UID, retained.DeletionTimestamp)
	}
	if retained.Labels[tenancyv1alpha1.LabelRetained] != "true" || len(retained.OwnerReferences) != 0 {
		t.Errorf("retained namespace: labels %v, owner references %v (want the retained label and none)", retained.Labels, retained.OwnerReferences)
	}
	np := &networkingv1.NetworkPolicy{}
	get(t, np, "tenant-keeper", "tenant-default-deny")
	if len(np.OwnerReferences) != 0 {
		t.Errorf("the retained namespace's fence still has owner references a garbage collector would follow: %v", np.OwnerReferences)
	}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant-keeper", Name: "tenant-owners"}, &rbacv1.RoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the owners binding survived deletion: %v", err)
	}
	if err := admin.Get(ctx, client.ObjectKey{Name: "tenantctl:tenant:keeper"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the member ClusterRoleBinding survived deletion: %v", err)
	}
	if err := rita.List(ctx, &corev1.PodList{}, client.InNamespace("tenant-keeper")); !apierrors.IsForbidden(err) {
		t.Errorf("the owner keeps access after deletion: %v", err)
	}

	// A Tenant of the same name adopts the retained namespace.
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "keeper"}, Spec: spec})
	waitForReady(t, "keeper")
	second := getTenant(t, "keeper")
	adopted := &corev1.Namespace{}
	get(t, adopted, "", "tenant-keeper")
	if adopted.UID != ns.UID || !ownedByTenant(adopted, second) {
		t.Errorf("the namespace was not re-adopted: uid %s (want %s), owners %v", adopted.UID, ns.UID, adopted.OwnerReferences)
	}
	if _, ok := adopted.Labels[tenancyv1alpha1.LabelRetained]; ok {
		t.Errorf("the re-adopted namespace still carries the retained label")
	}
	testenv.Eventually(t, wait, func() error {
		return rita.List(ctx, &corev1.PodList{}, client.InNamespace("tenant-keeper"))
	})
}

func TestDeletePolicyRemovesTheNamespace(t *testing.T) {
	ctx := context.Background()
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "goner"},
		Spec: tenancyv1alpha1.TenantSpec{DeletionPolicy: tenancyv1alpha1.DeletionPolicyDelete,
			Owners: []tenancyv1alpha1.Subject{owner("User", "gus")}}})
	waitForReady(t, "goner")
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		ns := &corev1.Namespace{}
		if err := admin.Get(ctx, client.ObjectKey{Name: "tenant-goner"}, ns); err != nil {
			return err
		}
		if ns.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace not being deleted yet")
		}
		return nil
	})
	// The Tenant waits for its namespace to be gone.
	got := waitForCondition(t, "goner", tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonDeletingNamespace)
	if got.Status.Phase != tenancyv1alpha1.TenantTerminating {
		t.Errorf("phase = %s, want Terminating", got.Status.Phase)
	}
	if err := admin.Get(ctx, client.ObjectKey{Name: "tenantctl:tenant:goner"}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
		t.Errorf("the member ClusterRole survived: %v", err)
	}

	// Stand-in for the namespace controller, which envtest does not run: it would delete the
	// namespace's contents and then finalize it. We finalize it.
	ns, err := clientset.CoreV1().Namespaces().Get(ctx, "tenant-goner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Spec.Finalizers = nil
	if _, err := clientset.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Name: "goner"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Tenant still there: %v", err)
		}
		if err := admin.Get(ctx, client.ObjectKey{Name: "tenant-goner"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace still there: %v", err)
		}
		return nil
	})
}

func TestDeletionProtectionRefusesDelete(t *testing.T) {
	ctx := context.Background()
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "guarded"},
		Spec: tenancyv1alpha1.TenantSpec{DeletionProtection: true}})
	waitForReady(t, "guarded")
	err := admin.Delete(ctx, tnt)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "Tenant guarded has spec.deletionProtection: true; set it to false before deleting it") {
		t.Fatalf("want the deletion refused with a clear message, got %v", err)
	}
	if got := getTenant(t, "guarded"); !got.DeletionTimestamp.IsZero() {
		t.Fatal("the protected Tenant is being deleted")
	}
	// With protection off, deletion goes through.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"deletionProtection":false}}`))
	if err := admin.Patch(ctx, tnt, patch); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatalf("unprotected delete: %v", err)
	}
}

func TestSpecChangesAreAppliedAndPruned(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "evolve"},
		Spec: tenancyv1alpha1.TenantSpec{
			Owners: []tenancyv1alpha1.Subject{owner("User", "eve")},
			SSO:    &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{{Group: "evolve-devs", Role: "developer"}}},
		}})
	waitForReady(t, "evolve")

	tnt := getTenant(t, "evolve")
	tnt.Spec.Owners = nil
	tnt.Spec.SSO.Groups = []tenancyv1alpha1.SSOGroupMapping{{Group: "evolve-devs", Role: "viewer"}}
	tnt.Spec.Quota = &tenancyv1alpha1.QuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("7")}}
	tnt.Spec.Limits = &tenancyv1alpha1.LimitsSpec{Max: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
	tnt.Spec.Isolation.PodSecurity = tenancyv1alpha1.PodSecurityBaseline
	tnt.Spec.Isolation.NetworkPolicy = tenancyv1alpha1.NetworkPolicyDenyAll
	if err := admin.Update(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	waitForReady(t, "evolve")

	const ns = "tenant-evolve"
	for _, gone := range []string{"tenant-owners", "tenant-sso-developer"} {
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: gone}, &rbacv1.RoleBinding{}); !apierrors.IsNotFound(err) {
			t.Errorf("RoleBinding %s should have been pruned: %v", gone, err)
		}
	}
	viewers := &rbacv1.RoleBinding{}
	get(t, viewers, ns, "tenant-sso-viewer")
	if viewers.RoleRef.Name != "tenant-viewer" {
		t.Errorf("viewer binding = %+v", viewers.RoleRef)
	}
	q := &corev1.ResourceQuota{}
	get(t, q, ns, "tenant-quota")
	if len(q.Spec.Hard) != 1 || q.Spec.Hard.Pods().String() != "7" {
		t.Errorf("quota = %v, want only pods=7", q.Spec.Hard)
	}
	lr := &corev1.LimitRange{}
	get(t, lr, ns, "tenant-limits")
	// The spec's limits replace the configured defaults (the apiserver itself then defaults
	// default and defaultRequest to max, which is Kubernetes' LimitRange behaviour).
	if item := lr.Spec.Limits[0]; item.Max.Memory().String() != "2Gi" || item.Default.Cpu().String() != "0" || len(item.Max) != 1 {
		t.Errorf("limit range = %+v, want max memory 2Gi and no configured cpu default", item)
	}
	nsObj := &corev1.Namespace{}
	get(t, nsObj, "", ns)
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "baseline" {
		t.Errorf("Pod Security level not changed: %v", nsObj.Labels)
	}
	allow := &networkingv1.NetworkPolicy{}
	get(t, allow, ns, "tenant-allow")
	if len(allow.Spec.Egress) != 2 {
		t.Errorf("DenyAll should allow egress to peers and DNS only: %+v", allow.Spec.Egress)
	}
}

func TestSuspendPausesReconciliation(t *testing.T) {
	ctx := context.Background()
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "paused"}, Spec: tenancyv1alpha1.TenantSpec{}})
	waitForReady(t, "paused")
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"suspend":true}}`))
	if err := admin.Patch(ctx, tnt, patch); err != nil {
		t.Fatal(err)
	}
	got := waitForCondition(t, "paused", tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonSuspended)
	if got.Status.Phase != tenancyv1alpha1.TenantSuspended {
		t.Errorf("phase = %s, want Suspended", got.Status.Phase)
	}

	count := reconcileCount(t)
	q := &corev1.ResourceQuota{}
	get(t, q, "tenant-paused", "tenant-quota")
	q.Spec.Hard[corev1.ResourcePods] = resource.MustParse("1")
	if err := admin.Update(ctx, q); err != nil {
		t.Fatal(err)
	}
	waitForReconciles(t, count, 1) // the quota's watch event woke the controller ...
	get(t, q, "tenant-paused", "tenant-quota")
	if q.Spec.Hard.Pods().String() != "1" { // ... and it changed nothing
		t.Errorf("a suspended tenant was reconciled: pods quota is %s", q.Spec.Hard.Pods().String())
	}

	patch = client.RawPatch(types.MergePatchType, []byte(`{"spec":{"suspend":false}}`))
	if err := admin.Patch(ctx, tnt, patch); err != nil {
		t.Fatal(err)
	}
	waitForReady(t, "paused")
	testenv.Eventually(t, wait, func() error {
		get(t, q, "tenant-paused", "tenant-quota")
		if q.Spec.Hard.Pods().String() != "100" {
			return fmt.Errorf("pods quota is %s", q.Spec.Hard.Pods().String())
		}
		return nil
	})
}

func TestUnknownSSORoleIsReportedNotRetried(t *testing.T) {
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "badrole"},
		Spec: tenancyv1alpha1.TenantSpec{SSO: &tenancyv1alpha1.SSOSpec{Groups: []tenancyv1alpha1.SSOGroupMapping{
			{Group: "badrole-ops", Role: "superuser"}}}}})
	got := waitForCondition(t, "badrole", tenancyv1alpha1.ConditionRBACReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonInvalidSpec)
	msg := findCondition(got, tenancyv1alpha1.ConditionRBACReady).Message
	if !strings.Contains(msg, `spec.sso.groups[0].role: "superuser" is not a tenant role this operator allows`) {
		t.Errorf("message = %q", msg)
	}
	// Isolation is in force even though access is not granted.
	tnt := waitForCondition(t, "badrole", tenancyv1alpha1.ConditionIsolationReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonReady)
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: "tenant-badrole", Name: "tenant-sso-superuser"}, &rbacv1.RoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("a binding was made for a role the operator does not allow: %v", err)
	}

	// Not retried: the pass that found the spec invalid returned without an error, so nothing runs
	// again for this Tenant until something changes. A retry shows as a "Reconciler error" of this
	// Tenant in the operator's log (controller-runtime logs every pass that returns an error, then
	// retries it within milliseconds and backs off: a few seconds see several), and a pass that
	// rewrites status or children shows as a write. (Counted for this Tenant only: other tenants of
	// the suite may be retrying meanwhile.)
	// The pass that wrote the condition is followed by one more, on its own status write, which may
	// read the cache from before that write and lose an optimistic-lock conflict: wait until the
	// Tenant has been quiet for a second before watching for retries.
	var retries, mark int
	var quietSince time.Time
	testenv.Eventually(t, 30*time.Second, func() error {
		e, w := tenantErrors(t, "badrole"), len(writes.since(0, "tenant-badrole", "/tenants/badrole", "tenantctl:tenant:badrole"))
		if quietSince.IsZero() || e != retries || w != mark {
			retries, mark, quietSince = e, w, time.Now()
		}
		if time.Since(quietSince) < time.Second {
			return fmt.Errorf("badrole is not quiet yet")
		}
		return nil
	})
	mark = writes.mark()
	testenv.Consistently(t, 3*time.Second, func() error {
		if n := tenantErrors(t, "badrole") - retries; n > 0 {
			return fmt.Errorf("the Tenant controller retried badrole %d times with nothing changed", n)
		}
		if w := writes.since(mark, "tenant-badrole", "/tenants/badrole", "tenantctl:tenant:badrole"); len(w) > 0 {
			return fmt.Errorf("%d writes with nothing changed:\n%s", len(w), strings.Join(w, "\n"))
		}
		return nil
	})

	// A change is acted on: with an allowed role the access is granted.
	patch := client.MergeFrom(tnt.DeepCopy())
	tnt.Spec.SSO.Groups[0].Role = "viewer"
	if err := admin.Patch(context.Background(), tnt, patch); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, "badrole", tenancyv1alpha1.ConditionRBACReady, metav1.ConditionTrue, "")
}

func cnpgCluster(namespace string) client.Object {
	c := &cnpgv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: namespace}}
	c.Spec.Instances = 1
	c.Spec.StorageConfiguration.Size = "1Gi"
	return c
}

// tenantErrors counts the passes over the named Tenant that ended in an error, from the operator's
// log (controller-runtime logs each as "Reconciler error" naming the object).
func tenantErrors(t *testing.T, name string) int {
	t.Helper()
	data, err := os.ReadFile(testenv.OperatorLog)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"Reconciler error"`) && strings.Contains(line, `"Tenant":{"name":"`+name+`"}`) {
			n++
		}
	}
	return n
}
