package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// The Barman Cloud plugin is an optional part of a platform: without its ObjectStore CRD (as on the
// real cluster of make cluster) the operator starts, and a Tenant with a database but no backups
// becomes Ready. (The cache refuses options for a kind it cannot map; pruning must not fail on a
// kind that does not exist.) This test runs on a control plane of its own, from which it removes the
// CRD before the operator starts.
func TestRunsWithoutTheBarmanCloudPlugin(t *testing.T) {
	own, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ext, err := client.New(own.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "objectstores.barmancloud.cnpg.io"}}
	if err := ext.Delete(ctx, crd); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := ext.Get(ctx, client.ObjectKeyFromObject(crd), crd); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the ObjectStore CRD is still there: %v", err)
		}
		return nil
	})

	admin, err := client.New(own.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	opConfig, err := own.OperatorConfig(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Database.Backup = &config.BackupTemplate{ObjectStore: map[string]any{"destinationPath": "s3://backups/tenants"}}
	mgr, err := controllers.New(opConfig, controllers.Options{MetricsAddr: "0", ProbeAddr: "0", MaxConcurrentTenants: 2, Config: cfg, SkipNameValidation: true})
	if err != nil {
		t.Fatalf("the manager cannot be built without the ObjectStore CRD: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	tnt := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "noplugin"}, Spec: tenancyv1alpha1.TenantSpec{
		DeletionPolicy: tenancyv1alpha1.DeletionPolicyRetain,
		Database:       &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseDedicated, Storage: &tenancyv1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}},
	}}
	if err := admin.Create(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	// Every area but the database (which waits for CloudNativePG, not running here) reaches a
	// verdict: no pass fails on the missing kind.
	testenv.Eventually(t, 30*time.Second, func() error {
		got := &tenancyv1alpha1.Tenant{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(tnt), got); err != nil {
			return err
		}
		for _, typ := range []string{tenancyv1alpha1.ConditionNamespaceReady, tenancyv1alpha1.ConditionIsolationReady,
			tenancyv1alpha1.ConditionRBACReady, tenancyv1alpha1.ConditionSecretsReady} {
			if !meta.IsStatusConditionTrue(got.Status.Conditions, typ) {
				return fmt.Errorf("%s is not True: %+v", typ, meta.FindStatusCondition(got.Status.Conditions, typ))
			}
		}
		if got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d: a pass failed", got.Status.ObservedGeneration, got.Generation)
		}
		return nil
	})

	// A Tenant that asks for backups is told what is missing.
	backed := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "wantsbackups"}, Spec: tenancyv1alpha1.TenantSpec{
		DeletionPolicy: tenancyv1alpha1.DeletionPolicyRetain,
		Database: &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseDedicated, Storage: &tenancyv1alpha1.StorageSpec{Size: resource.MustParse("1Gi")},
			Backup: &tenancyv1alpha1.BackupSpec{Schedule: "0 0 0 * * *"}},
	}}
	if err := admin.Create(ctx, backed); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		got := &tenancyv1alpha1.Tenant{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(backed), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionDatabaseReady)
		if c == nil || c.Reason != tenancyv1alpha1.ReasonApplyFailed || !strings.Contains(c.Message, "ObjectStore") {
			return fmt.Errorf("DatabaseReady is %+v, want ApplyFailed naming the ObjectStore", c)
		}
		return nil
	})
}
