package controllers_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
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

// TestManagerSmoke starts the manager exactly as main.go builds it (leader election on) and checks
// that it takes a Tenant and a RoleBinding, reports on them, and that its scheme knows every kind
// it will manage.
func TestManagerSmoke(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	admin, err := client.New(env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	opUser, err := env.OperatorUser(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	grantLeaderElection(t, admin, "default")
	mgr, err := controllers.New(opUser.Config(), controllers.Options{
		MetricsAddr:          "0",
		ProbeAddr:            "0",
		LeaderElection:       true,
		LeaderElectionNS:     "default",
		MaxConcurrentTenants: 2,
		Config:               config.Default(),
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

	tnt := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "smoke"}}
	if err := c.Create(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		got := &tenancyv1alpha1.Tenant{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(tnt), got); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionReady)
		if ready == nil || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status not yet reported: %+v", got.Status)
		}
		if ready.ObservedGeneration != got.Generation || ready.Reason == "" {
			return fmt.Errorf("Ready condition lacks generation or reason: %+v", ready)
		}
		for _, typ := range []string{tenancyv1alpha1.ConditionNamespaceReady, tenancyv1alpha1.ConditionIsolationReady,
			tenancyv1alpha1.ConditionRBACReady, tenancyv1alpha1.ConditionDatabaseReady, tenancyv1alpha1.ConditionSecretsReady} {
			if meta.FindStatusCondition(got.Status.Conditions, typ) == nil {
				return fmt.Errorf("condition %s missing", typ)
			}
		}
		return nil
	})

	rb := &tenancyv1alpha1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: "default"},
		Spec: tenancyv1alpha1.RoleBindingSpec{Role: "viewer", Subjects: []tenancyv1alpha1.Subject{
			{Kind: tenancyv1alpha1.SubjectUser, Name: "alice"}}},
	}
	if err := c.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		got := &tenancyv1alpha1.RoleBinding{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(rb), got); err != nil {
			return err
		}
		if meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionReady) == nil {
			return fmt.Errorf("RoleBinding status not yet reported")
		}
		return nil
	})
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
