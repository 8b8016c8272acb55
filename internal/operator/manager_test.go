package operator_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/operator"
	"github.com/tenantctl/tenant-operator/internal/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	var err error
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
	mgr, err := operator.New(env.Config, operator.Options{
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

	c := mgr.GetClient()
	for _, obj := range []client.Object{&tenancyv1alpha1.Tenant{}, &tenancyv1alpha1.RoleBinding{},
		&cnpgv1.Cluster{}, &cnpgv1.Database{}, &externalsecrets.ExternalSecret{}, &externalsecrets.SecretStore{}, &externalsecrets.PushSecret{}} {
		if _, err := c.RESTMapper().RESTMapping(mustGVK(t, c, obj).GroupKind()); err != nil {
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

func mustGVK(t *testing.T, c client.Client, obj client.Object) schema.GroupVersionKind {
	t.Helper()
	g, err := c.GroupVersionKindFor(obj)
	if err != nil {
		t.Fatalf("the manager's scheme does not know %T: %v", obj, err)
	}
	return g
}
