package rolebinding_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

func grant(namespace, name, role string, expires time.Duration, subjects ...tenancyv1alpha1.Subject) *tenancyv1alpha1.RoleBinding {
	return &tenancyv1alpha1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: tenancyv1alpha1.RoleBindingSpec{Role: role, Subjects: subjects, Reason: "CHG-1234",
			ExpiresAt: ptr.To(metav1.NewTime(time.Now().Add(expires).Truncate(time.Second)))},
	}
}

func user(name string) tenancyv1alpha1.Subject {
	return tenancyv1alpha1.Subject{Kind: tenancyv1alpha1.SubjectUser, Name: name}
}

func deployment(namespace, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
}

// canCreateDeployment tries a server-side dry-run create as c: RBAC and admission decide, nothing
// is stored.
func canCreateDeployment(c client.Client, namespace string) error {
	return c.Create(context.Background(), deployment(namespace, "probe"), client.DryRunAll)
}

func expectRefused(t *testing.T, err error, fragment string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted, want a refusal containing %q", fragment)
	}
	if !strings.Contains(err.Error(), fragment) {
		t.Fatalf("refused with %q, want it to say %q", err, fragment)
	}
	t.Logf("refused: %v", err)
}

func condition(t *testing.T, key client.ObjectKey, typ string) (metav1.Condition, bool) {
	t.Helper()
	rb := &tenancyv1alpha1.RoleBinding{}
	if err := admin.Get(context.Background(), key, rb); err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(rb.Status.Conditions, typ)
	if c == nil || c.ObservedGeneration != rb.Generation {
		return metav1.Condition{}, false
	}
	return *c, true
}

func TestTenantAdminGrantsDeveloperInOwnTenantOnly(t *testing.T) {
	ctx := context.Background()
	acmeAdmin := as(t, "acme:admin")
	alice := as(t, "acme:alice")
	if err := canCreateDeployment(alice, acmeNS); !apierrors.IsForbidden(err) {
		t.Fatalf("before the grant alice could create a Deployment in acme (err %v)", err)
	}
	rb := grant(acmeNS, "alice-dev", "developer", time.Hour, user("acme:alice"))
	if err := acmeAdmin.Create(ctx, rb); err != nil {
		t.Fatalf("acme's admin granting developer in acme: %v", err)
	}
	testenv.Eventually(t, wait, func() error {
		c, ok := condition(t, client.ObjectKeyFromObject(rb), tenancyv1alpha1.ConditionReady)
		if !ok || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready is %+v", c)
		}
		return canCreateDeployment(alice, acmeNS)
	})
	expectKstatus(t, rb, status.CurrentStatus)
	if err := canCreateDeployment(alice, globexNS); !apierrors.IsForbidden(err) {
		t.Errorf("alice creating a Deployment in globex: %v, want Forbidden", err)
	}
	if err := alice.List(ctx, &corev1.PodList{}, client.InNamespace(globexNS)); !apierrors.IsForbidden(err) {
		t.Errorf("alice listing pods in globex: %v, want Forbidden", err)
	}
	if err := alice.Get(ctx, client.ObjectKey{Namespace: acmeNS, Name: "x"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("alice reading a Secret in acme as developer: %v, want NotFound (allowed, absent)", err)
	}

	// Deleting the grant ends the access. No garbage collector runs here: the operator revokes it.
	if err := acmeAdmin.Delete(ctx, rb); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if err := canCreateDeployment(alice, acmeNS); !apierrors.IsForbidden(err) {
			return fmt.Errorf("alice can still create Deployments in acme (err %v)", err)
		}
		return nil
	})
}

// granter gives user the right to create tenancy RoleBindings in namespace, plus whatever extra
// rules, through a native Role the platform admin writes: the escalation check is what stands
// between such a user and a wider grant.
func granter(t *testing.T, namespace, user, name string, extra ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Rules: append([]rbacv1.PolicyRule{{APIGroups: []string{tenancyv1alpha1.GroupVersion.Group, rbacv1.GroupName},
			Resources: []string{"rolebindings"}, Verbs: []string{"create", "update", "patch"}}}, extra...),
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := admin.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// nativeBind binds user to a tenant role's ClusterRole in namespace, as the platform admin.
func nativeBind(t *testing.T, namespace, user, clusterRole string) {
	t.Helper()
	b := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "native-" + strings.ReplaceAll(user, ":", "-") + "-" + clusterRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if err := admin.Create(context.Background(), b); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func TestRefusalsNameTheirReason(t *testing.T) {
	ctx := context.Background()
	// acme:lead holds developer and may create grants: it can pass developer on, not admin.
	nativeBind(t, acmeNS, "acme:lead", "tenant-developer")
	granter(t, acmeNS, "acme:lead", "lead-granter")
	lead := as(t, "acme:lead")
	acmeAdmin := as(t, "acme:admin")
	platform := as(t, "platform:root", "system:masters")

	testenv.Eventually(t, wait, func() error { // the native bindings are in force at once; the cache of RBAC may lag
		return lead.Create(ctx, grant(acmeNS, "lead-passes-developer", "developer", time.Hour, user("acme:bob")), client.DryRunAll)
	})
	cases := map[string]struct {
		as       client.Client
		rb       *tenancyv1alpha1.RoleBinding
		fragment string
	}{
		"a developer cannot grant admin": {as: lead,
			rb:       grant(acmeNS, "lead-grants-admin", "admin", time.Hour, user("acme:bob")),
			fragment: "acme:lead may not grant admin (ClusterRole tenant-admin) in tenant-acme: they may not bind it, and do not hold"},
		"nobody grants cluster-admin, not even a cluster admin": {as: platform,
			rb:       grant(acmeNS, "cluster-admin", "cluster-admin", time.Hour, user("acme:bob")),
			fragment: `spec.role: Unsupported value: "cluster-admin": supported values: "admin", "developer", "viewer"`},
		"no arbitrary ClusterRole by name either": {as: platform,
			rb:       grant(acmeNS, "edit", "tenant-admin", time.Hour, user("acme:bob")),
			fragment: `spec.role: Unsupported value: "tenant-admin"`},
		"a ServiceAccount from another namespace": {as: acmeAdmin,
			rb: grant(acmeNS, "foreign-sa", "viewer", time.Hour,
				tenancyv1alpha1.Subject{Kind: tenancyv1alpha1.SubjectServiceAccount, Name: "deployer", Namespace: globexNS}),
			fragment: "spec.subjects[0].namespace: Forbidden: ServiceAccount tenant-globex/deployer is not of tenant acme"},
		"a user without the tenant's SSO prefix": {as: acmeAdmin,
			rb:       grant(acmeNS, "unprefixed", "viewer", time.Hour, user("globex:mallory")),
			fragment: `spec.subjects[0].name: Forbidden: user "globex:mallory" does not carry tenant acme's SSO prefix "acme:"`},
		"a system group (everyone)": {as: acmeAdmin,
			rb:       grant(acmeNS, "everyone", "viewer", time.Hour, tenancyv1alpha1.Subject{Kind: tenancyv1alpha1.SubjectGroup, Name: "system:authenticated"}),
			fragment: `spec.subjects[0].name: Forbidden: group "system:authenticated" is a Kubernetes system identity`},
		"an expiry in the past": {as: acmeAdmin,
			rb:       grant(acmeNS, "past", "viewer", -time.Minute, user("acme:bob")),
			fragment: "spec.expiresAt: Invalid value",
		},
		"an expiry beyond the platform's maximum": {as: acmeAdmin,
			rb:       grant(acmeNS, "forever", "viewer", 1000*time.Hour, user("acme:bob")),
			fragment: "must be at most 720h ahead"},
		"a RoleBinding outside a tenant namespace, even by a cluster admin": {as: platform,
			rb:       grant("default", "outside", "viewer", time.Hour, user("acme:bob")),
			fragment: "metadata.namespace: Forbidden: namespace default is not a tenant namespace"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			expectRefused(t, tc.as.Create(ctx, tc.rb), tc.fragment)
		})
	}
	t.Run("no expiry when the platform sets a maximum", func(t *testing.T) {
		rb := grant(acmeNS, "no-expiry", "viewer", time.Hour, user("acme:bob"))
		rb.Spec.ExpiresAt = nil
		expectRefused(t, acmeAdmin.Create(ctx, rb), "spec.expiresAt: Required value: grants last at most 720h")
	})
	t.Run("a plain developer may not create grants at all", func(t *testing.T) {
		nativeBind(t, acmeNS, "acme:dev", "tenant-developer")
		dev := as(t, "acme:dev")
		testenv.Eventually(t, wait, func() error { return canCreateDeployment(dev, acmeNS) })
		err := dev.Create(ctx, grant(acmeNS, "dev-grants-admin", "admin", time.Hour, user("acme:dev")))
		if !apierrors.IsForbidden(err) {
			t.Fatalf("a developer creating an admin grant: %v, want Forbidden", err)
		}
	})
	t.Run("acme's admin cannot grant in globex", func(t *testing.T) {
		err := acmeAdmin.Create(ctx, grant(globexNS, "cross", "viewer", time.Hour, user("acme:bob")))
		if !apierrors.IsForbidden(err) {
			t.Fatalf("acme's admin creating a grant in globex: %v, want Forbidden", err)
		}
	})
	t.Run("a refused update leaves the grant as it was", func(t *testing.T) {
		rb := grant(acmeNS, "bob-viewer", "viewer", time.Hour, user("acme:bob"))
		if err := lead.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"role":"admin"}}`))
		expectRefused(t, lead.Patch(ctx, rb, patch), "may not grant admin")
		got := &tenancyv1alpha1.RoleBinding{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(rb), got); err != nil || got.Spec.Role != "viewer" {
			t.Fatalf("after a refused update the grant is %q (err %v), want viewer", got.Spec.Role, err)
		}
	})
}

func TestAccessEndsAtExpiry(t *testing.T) {
	ctx := context.Background()
	carol := as(t, "acme:carol")
	rb := grant(acmeNS, "carol-temporary", "developer", 6*time.Second, user("acme:carol"))
	if err := as(t, "acme:admin").Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error { return canCreateDeployment(carol, acmeNS) })
	testenv.Eventually(t, wait, func() error {
		if err := canCreateDeployment(carol, acmeNS); !apierrors.IsForbidden(err) {
			return fmt.Errorf("carol can still create Deployments (err %v)", err)
		}
		return nil
	})
	if !time.Now().After(rb.Spec.ExpiresAt.Time) {
		t.Fatalf("access ended before expiresAt")
	}
	testenv.Eventually(t, wait, func() error {
		c, ok := condition(t, client.ObjectKeyFromObject(rb), tenancyv1alpha1.ConditionExpired)
		if !ok || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Expired is %+v", c)
		}
		return nil
	})
	// Failed, not InProgress: a GitOps tool must not wait forever on a grant that has ended.
	expectKstatus(t, rb, status.FailedStatus)
}

// expectKstatus waits until kstatus (what Flux and kstatus-based tools compute) reports want.
func expectKstatus(t *testing.T, rb *tenancyv1alpha1.RoleBinding, want status.Status) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		got := &tenancyv1alpha1.RoleBinding{}
		if err := admin.Get(context.Background(), client.ObjectKeyFromObject(rb), got); err != nil {
			return err
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(got)
		if err != nil {
			return err
		}
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			return err
		}
		if res.Status != want {
			return fmt.Errorf("kstatus is %s (%s), want %s", res.Status, res.Message, want)
		}
		return nil
	})
}
