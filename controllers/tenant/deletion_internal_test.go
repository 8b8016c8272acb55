package tenant

import (
	"context"
	"fmt"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// A platform that stops configuring a shared cluster must still be able to delete the tenants that
// had a database on it: their objects are found by label, not rebuilt from the configuration (the
// previous code dereferenced the missing configuration and panicked).
//
// This test drives one Reconciler by hand against a control plane of its own, so that no manager
// acts on the same Tenant.
func TestDeletionNeedsNoSharedClusterConfiguration(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(tenancyv1alpha1.AddToScheme(scheme))
	utilruntime.Must(cnpgv1.AddToScheme(scheme))
	utilruntime.Must(externalsecrets.AddToScheme(scheme))
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	tnt := &tenancyv1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Finalizers: []string{tenancyv1alpha1.Finalizer}},
		Spec: tenancyv1alpha1.TenantSpec{DeletionPolicy: tenancyv1alpha1.DeletionPolicyRetain,
			Database: &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared, DeletionPolicy: tenancyv1alpha1.DeletionPolicyDelete}},
	}
	if err := c.Create(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	// What the operator made while the shared cluster was configured.
	was := config.Default()
	was.Database.Shared = &config.SharedCluster{Name: "shared-pg", Namespace: "shared-db"}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shared-db"}}); err != nil {
		t.Fatal(err)
	}
	role, db, _ := database.SharedObjects(tnt, "tenant-orphan", was)
	for _, obj := range []client.Object{role, db} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}

	r := &Reconciler{Client: c, APIReader: c, Config: config.Default(), Applier: NewApplier(c)}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Name: "orphan"}}
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, err := r.Reconcile(ctx, req); err != nil {
			return err
		}
		if err := c.Get(ctx, req.NamespacedName, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the Tenant is still there: %v", err)
		}
		return nil
	})
	if err := c.Get(ctx, req.NamespacedName, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Tenant was not released: %v", err)
	}
	for _, obj := range []client.Object{&cnpgv1.DatabaseRole{}, &cnpgv1.Database{}} {
		err := c.Get(ctx, client.ObjectKey{Namespace: "shared-db", Name: "tenant-orphan"}, obj)
		if !apierrors.IsNotFound(err) && (err != nil || obj.GetDeletionTimestamp().IsZero()) {
			t.Errorf("%T tenant-orphan was not deleted under the database's Delete policy: %v", obj, err)
		}
	}
}
