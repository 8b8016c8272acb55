package tenant_test

// CloudNativePG cannot run here (no container runtime): where a test needs CNPG's view of a
// Cluster, Database or Backup, it writes that status itself, standing in for the CNPG operator,
// and says so. Everything the operator creates is created in the real apiserver, so CNPG's own CRD
// schemas and CEL rules accept or refuse it.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

func dedicated(backup bool) *tenancyv1alpha1.DatabaseSpec {
	db := &tenancyv1alpha1.DatabaseSpec{
		Mode: tenancyv1alpha1.DatabaseDedicated, PostgresVersion: 17, Instances: ptr.To[int32](2),
		Storage:    &tenancyv1alpha1.StorageSpec{Size: resource.MustParse("5Gi")},
		Parameters: map[string]string{"work_mem": "16MB"},
	}
	if backup {
		db.Backup = &tenancyv1alpha1.BackupSpec{Schedule: "0 0 3 * * *", RetentionPolicy: "14d"}
	}
	return db
}

// markClusterHealthy writes the status CloudNativePG would write for a healthy cluster (stand-in).
func markClusterHealthy(t *testing.T, namespace string, mutate func(*cnpgv1.ClusterStatus)) {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, wait, func() error {
		c := &cnpgv1.Cluster{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "postgres"}, c); err != nil {
			return err
		}
		c.Status.Phase = cnpgv1.PhaseHealthy
		c.Status.Instances = c.Spec.Instances
		c.Status.ReadyInstances = c.Spec.Instances
		if mutate != nil {
			mutate(&c.Status)
		}
		return admin.Status().Update(ctx, c)
	})
}

func TestDedicatedDatabase(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "dbco"},
		Spec: tenancyv1alpha1.TenantSpec{Database: dedicated(true)}})
	const ns = "tenant-dbco"

	// The Cluster, accepted by CloudNativePG's own CRD schema.
	cluster := &cnpgv1.Cluster{}
	testenv.Eventually(t, wait, func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres"}, cluster)
	})
	if cluster.Spec.Instances != 2 || cluster.Spec.ImageName != "ghcr.io/cloudnative-pg/postgresql:17" ||
		cluster.Spec.EnableSuperuserAccess == nil || *cluster.Spec.EnableSuperuserAccess ||
		cluster.Spec.Bootstrap.InitDB.Database != "dbco" || cluster.Spec.PostgresConfiguration.Parameters["work_mem"] != "16MB" ||
		cluster.Spec.PostgresConfiguration.PgHBA[0] != "hostnossl all all all reject" ||
		cluster.Spec.Affinity.PodAntiAffinityType != "required" || cluster.Spec.StorageConfiguration.Size != "5Gi" {
		t.Errorf("cluster spec = %+v", cluster.Spec)
	}
	if len(cluster.Spec.Plugins) != 1 || cluster.Spec.Plugins[0].Parameters["barmanObjectName"] != "postgres-backups" {
		t.Errorf("the cluster does not archive through the Barman Cloud plugin: %+v", cluster.Spec.Plugins)
	}
	sb := &cnpgv1.ScheduledBackup{}
	testenv.Eventually(t, wait, func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres-scheduled"}, sb)
	})
	if sb.Spec.Method != cnpgv1.BackupMethodPlugin || sb.Spec.PluginConfiguration.Name != "barman-cloud.cloudnative-pg.io" || sb.Spec.Schedule != "0 0 3 * * *" {
		t.Errorf("scheduled backup = %+v", sb.Spec)
	}
	store := &unstructured.Unstructured{}
	store.SetAPIVersion("barmancloud.cnpg.io/v1")
	store.SetKind("ObjectStore")
	get(t, store, ns, "postgres-backups")
	if path, _, _ := unstructured.NestedString(store.Object, "spec", "configuration", "destinationPath"); path != "s3://platform-backups/tenants/dbco" {
		t.Errorf("backups go to %q, want the tenant's own path", path)
	}
	if keep, _, _ := unstructured.NestedString(store.Object, "spec", "retentionPolicy"); keep != "14d" {
		t.Errorf("retention = %q", keep)
	}

	// Not ready until CloudNativePG says so.
	got := waitForCondition(t, "dbco", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "ClusterNotReady")
	if got.Status.Database == nil || got.Status.Database.CredentialsSecret != "postgres-app" ||
		got.Status.Database.ReadWriteService != "postgres-rw.tenant-dbco.svc" || got.Status.Database.ReadOnlyService != "postgres-ro.tenant-dbco.svc" ||
		got.Status.Database.DatabaseName != "dbco" {
		t.Errorf("status.database = %+v", got.Status.Database)
	}

	// Stand-in for CloudNativePG and the Barman Cloud plugin: the cluster becomes healthy, and the
	// object store's catalog lists a successful backup.
	success := "2026-11-20T02:00:05Z"
	markClusterHealthy(t, ns, func(*cnpgv1.ClusterStatus) {})
	recoveryWindow(t, ns, map[string]string{"lastSuccessfulBackupTime": success})
	waitForReady(t, "dbco")
	testenv.Eventually(t, wait, func() error {
		db := getTenant(t, "dbco").Status.Database
		if db == nil || db.ReadyInstances != 2 || db.Phase != cnpgv1.PhaseHealthy || db.LastSuccessfulBackup == nil ||
			db.LastSuccessfulBackup.UTC().Format(time.RFC3339) != success {
			return fmt.Errorf("status.database = %+v", db)
		}
		return nil
	})

	// Stand-in for CloudNativePG: a later backup fails. The tenant says so.
	recoveryWindow(t, ns, map[string]string{"lastSuccessfulBackupTime": success, "lastFailedBackupTime": "2026-11-21T02:00:09Z"})
	got = waitForCondition(t, "dbco", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "BackupFailing")
	if got.Status.Phase != tenancyv1alpha1.TenantDegraded || got.Status.Database.LastFailedBackup == nil {
		t.Errorf("phase %s, database %+v", got.Status.Phase, got.Status.Database)
	}

	// The credentials never appear in status: only the Secret's name.
	if strings.Contains(fmt.Sprintf("%+v", got.Status), "password") {
		t.Errorf("status mentions a password: %+v", got.Status)
	}
}

func TestDatabaseParametersOffTheAllowlist(t *testing.T) {
	db := dedicated(false)
	db.Parameters = map[string]string{"fsync": "off"}
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "unsafe"}, Spec: tenancyv1alpha1.TenantSpec{Database: db}})
	got := waitForCondition(t, "unsafe", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonInvalidSpec)
	if msg := findCondition(got, tenancyv1alpha1.ConditionDatabaseReady).Message; !strings.Contains(msg, "fsync not allowed") {
		t.Errorf("message = %q", msg)
	}
	waitForCondition(t, "unsafe", tenancyv1alpha1.ConditionIsolationReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonReady)
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: "tenant-unsafe", Name: "postgres"}, &cnpgv1.Cluster{}); !apierrors.IsNotFound(err) {
		t.Errorf("a cluster was created with a refused parameter: %v", err)
	}
}

func TestRestoreBuildsARecoveryClusterCNPGAccepts(t *testing.T) {
	db := dedicated(true)
	db.Backup.ServerName = "postgres-2"
	target := metav1.NewTime(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	db.Restore = &tenancyv1alpha1.RestoreSpec{TargetTime: &target}
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "phoenix"}, Spec: tenancyv1alpha1.TenantSpec{Database: db}})
	cluster := &cnpgv1.Cluster{}
	testenv.Eventually(t, wait, func() error {
		return admin.Get(context.Background(), client.ObjectKey{Namespace: "tenant-phoenix", Name: "postgres"}, cluster)
	})
	rec := cluster.Spec.Bootstrap.Recovery
	if rec == nil || rec.Source != "origin" || rec.RecoveryTarget.TargetTime != "2026-11-01T12:00:00.000000Z" || cluster.Spec.Bootstrap.InitDB != nil {
		t.Fatalf("bootstrap = %+v", cluster.Spec.Bootstrap)
	}
	origin := cluster.Spec.ExternalClusters[0].PluginConfiguration
	if origin.Parameters["barmanObjectName"] != "postgres-backups" || origin.Parameters["serverName"] != "postgres" ||
		cluster.Spec.Plugins[0].Parameters["serverName"] != "postgres-2" {
		t.Errorf("restores from %v and archives as %v", origin.Parameters, cluster.Spec.Plugins[0].Parameters)
	}
}

func TestDeleteTakesAFinalBackupFirst(t *testing.T) {
	ctx := context.Background()
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "lastcall"},
		Spec: tenancyv1alpha1.TenantSpec{DeletionPolicy: tenancyv1alpha1.DeletionPolicyDelete, Database: dedicated(true)}})
	const ns = "tenant-lastcall"
	markClusterHealthy(t, ns, nil) // stand-in for CloudNativePG
	waitForReady(t, "lastcall")
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}

	backup := &cnpgv1.Backup{}
	testenv.Eventually(t, wait, func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres-final"}, backup)
	})
	if backup.Spec.Method != cnpgv1.BackupMethodPlugin || backup.Spec.Cluster.Name != "postgres" || len(backup.OwnerReferences) != 0 {
		t.Errorf("final backup = %+v, owners %v", backup.Spec, backup.OwnerReferences)
	}
	waitForCondition(t, "lastcall", tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, "FinalBackupRunning")

	// Stand-in for CloudNativePG: the backup fails. Nothing is deleted, and the Tenant says why.
	backup.Status.Phase = cnpgv1.BackupPhaseFailed
	if err := admin.Status().Update(ctx, backup); err != nil {
		t.Fatal(err)
	}
	got := waitForCondition(t, "lastcall", tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, "FinalBackupFailed")
	if msg := findCondition(got, tenancyv1alpha1.ConditionReady).Message; !strings.Contains(msg, "the database is kept") {
		t.Errorf("message = %q", msg)
	}
	nsObj := &corev1.Namespace{}
	get(t, nsObj, "", ns)
	if !nsObj.DeletionTimestamp.IsZero() {
		t.Fatal("the namespace is being deleted although the final backup failed")
	}

	// Retry as the message says: delete the failed Backup; a new one is taken, and completes.
	stopped := metav1.NewTime(time.Now().Truncate(time.Second))
	if err := admin.Delete(ctx, backup); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		again := &cnpgv1.Backup{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres-final"}, again); err != nil {
			return err
		}
		if again.UID == backup.UID {
			return fmt.Errorf("not retaken yet")
		}
		again.Status.Phase = cnpgv1.BackupPhaseCompleted // stand-in for CloudNativePG
		again.Status.StoppedAt = &stopped
		return admin.Status().Update(ctx, again)
	})
	// Completed is not enough: the database stays until the object store's catalog lists the
	// backup (the plugin's recovery window reaching its end).
	waitForConditionMessage(t, "lastcall", "waiting for the object store's catalog to list it")
	get(t, nsObj, "", ns)
	if !nsObj.DeletionTimestamp.IsZero() {
		t.Fatal("the namespace is being deleted before the object store lists the final backup")
	}
	listInCatalog(t, ns, stopped)
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
			return err
		}
		if nsObj.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace not being deleted yet")
		}
		return nil
	})
}

// listInCatalog writes what the Barman Cloud plugin writes once the object store's catalog lists a
// backup that ended at stopped (stand-in).
func listInCatalog(t *testing.T, ns string, stopped metav1.Time) {
	t.Helper()
	recoveryWindow(t, ns, map[string]string{"lastSuccessfulBackupTime": stopped.UTC().Format(time.RFC3339)})
}

// recoveryWindow writes fields of the ObjectStore's recovery window for the server "postgres", as
// the Barman Cloud plugin does (stand-in): the only place the plugin reports backups (CloudNativePG
// leaves the Cluster's backup times unset for plugins).
func recoveryWindow(t *testing.T, ns string, fields map[string]string) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		store := &unstructured.Unstructured{}
		store.SetAPIVersion("barmancloud.cnpg.io/v1")
		store.SetKind("ObjectStore")
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "postgres-backups"}, store); err != nil {
			return err
		}
		for field, value := range fields {
			if err := unstructured.SetNestedField(store.Object, value, "status", "serverRecoveryWindow", "postgres", field); err != nil {
				return err
			}
		}
		return admin.Status().Update(context.Background(), store)
	})
}

// completeFinalBackup waits for the final Backup other than the one with UID previous, and
// completes it, as CloudNativePG and the plugin would (stand-in), and returns it.
func completeFinalBackup(t *testing.T, ns string, previous types.UID) *cnpgv1.Backup {
	t.Helper()
	stopped := metav1.NewTime(time.Now().Truncate(time.Second))
	backup := &cnpgv1.Backup{}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "postgres-final"}, backup); err != nil {
			return err
		}
		if backup.UID == previous {
			return fmt.Errorf("the final Backup is still the earlier one")
		}
		backup.Status.Phase = cnpgv1.BackupPhaseCompleted
		backup.Status.StoppedAt = &stopped
		return admin.Status().Update(context.Background(), backup)
	})
	listInCatalog(t, ns, stopped)
	return backup
}

// A Tenant whose namespace is retained and whose database is deleted leaves its final Backup in the
// namespace. Created again, with a new database, and deleted again, it takes a final backup of the
// new database: the earlier one, complete and listed as it is, says nothing about the new data.
func TestFinalBackupOfAnEarlierDatabaseIsNotTakenForTheNewOne(t *testing.T) {
	ctx := context.Background()
	spec := func() *tenancyv1alpha1.Tenant {
		db := dedicated(true)
		db.DeletionPolicy = tenancyv1alpha1.DeletionPolicyDelete // the namespace is retained
		return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "reborn"}, Spec: tenancyv1alpha1.TenantSpec{Database: db}}
	}
	const ns = "tenant-reborn"
	tnt := createTenant(t, spec())
	markClusterHealthy(t, ns, nil) // stand-in for CloudNativePG
	waitForReady(t, "reborn")
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	earlier := completeFinalBackup(t, ns, "")
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Name: "reborn"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the Tenant is not gone yet: %v", err)
		}
		return nil
	})

	tnt = createTenant(t, spec())
	markClusterHealthy(t, ns, nil)
	waitForReady(t, "reborn")
	cluster := &cnpgv1.Cluster{}
	get(t, cluster, ns, "postgres")
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, "reborn", tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, "FinalBackupRunning")
	backup := &cnpgv1.Backup{}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres-final"}, backup); err != nil {
			return err
		}
		if backup.UID == earlier.UID {
			return fmt.Errorf("the final Backup is still the earlier database's")
		}
		return nil
	})
	if got := backup.Annotations[tenancyv1alpha1.AnnotationClusterUID]; got != string(cluster.UID) {
		t.Errorf("the new final Backup names cluster %q, want the current one %q", got, cluster.UID)
	}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres"}, &cnpgv1.Cluster{}); err != nil {
		t.Fatalf("the database was deleted before its own final backup: %v", err)
	}
	completeFinalBackup(t, ns, earlier.UID)
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres"}, &cnpgv1.Cluster{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the database is not deleted yet after its final backup: %v", err)
		}
		return nil
	})
}

func TestRetainKeepsTheDatabaseWithoutOwnerReferences(t *testing.T) {
	ctx := context.Background()
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "keepdb"},
		Spec: tenancyv1alpha1.TenantSpec{Database: dedicated(true)}})
	markClusterHealthy(t, "tenant-keepdb", nil) // stand-in for CloudNativePG
	waitForReady(t, "keepdb")
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Name: "keepdb"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Tenant still there: %v", err)
		}
		return nil
	})
	cluster := &cnpgv1.Cluster{}
	get(t, cluster, "tenant-keepdb", "postgres")
	sb := &cnpgv1.ScheduledBackup{}
	get(t, sb, "tenant-keepdb", "postgres-scheduled")
	for _, obj := range []client.Object{cluster, sb} {
		if !obj.GetDeletionTimestamp().IsZero() || len(obj.GetOwnerReferences()) != 0 || obj.GetLabels()[tenancyv1alpha1.LabelRetained] != "true" {
			t.Errorf("%T was not retained cleanly: deleting %v, owners %v, labels %v", obj, obj.GetDeletionTimestamp(), obj.GetOwnerReferences(), obj.GetLabels())
		}
	}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant-keepdb", Name: "postgres-final"}, &cnpgv1.Backup{}); !apierrors.IsNotFound(err) {
		t.Errorf("Retain took a final backup: %v", err)
	}
}

func TestSharedDatabase(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "smallco"},
		Spec: tenancyv1alpha1.TenantSpec{Database: &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared}}})
	const shared = sharedDBNamespace

	role, db, np := &cnpgv1.DatabaseRole{}, &cnpgv1.Database{}, &networkingv1.NetworkPolicy{}
	creds, copied := &corev1.Secret{}, &corev1.Secret{}
	// One pass applies these one after another: wait for all of them, not only the first.
	testenv.Eventually(t, wait, func() error {
		for _, o := range []struct {
			obj       client.Object
			namespace string
			name      string
		}{{role, shared, "tenant-smallco"}, {db, shared, "tenant-smallco"}, {np, shared, "tenant-smallco-db"},
			{creds, "tenant-smallco", "database-credentials"}, {copied, shared, "tenant-smallco-credentials"}} {
			if err := admin.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: o.name}, o.obj); err != nil {
				return err
			}
		}
		return nil
	})
	if db.Spec.Name != "smallco" || db.Spec.Owner != "smallco" || db.Spec.ClusterRef.Name != "shared-pg" || db.Spec.ReclaimPolicy != cnpgv1.DatabaseReclaimRetain {
		t.Errorf("database = %+v", db.Spec)
	}
	if role.Spec.Name != "smallco" || !role.Spec.Login || role.Spec.ReclaimPolicy != cnpgv1.DatabaseRoleReclaimRetain || role.Spec.PasswordSecret.Name != "tenant-smallco-credentials" {
		t.Errorf("role = %+v", role.Spec)
	}
	from := np.Spec.Ingress[0].From
	if len(from) != 1 || from[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != "tenant-smallco" || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 5432 {
		t.Errorf("the shared cluster admits %+v", np.Spec.Ingress)
	}

	// One source of the password: the tenant's Secret; the shared namespace holds a copy.
	if len(creds.Data["password"]) < 32 || string(copied.Data["password"]) != string(creds.Data["password"]) {
		t.Fatal("the shared copy does not hold the tenant's generated password")
	}
	// A rotation in the tenant's Secret reaches the copy, and the operator never reverts it.
	creds.Data["password"] = []byte("rotated-by-the-customer-0123456789")
	if err := admin.Update(ctx, creds); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(copied), copied); err != nil {
			return err
		}
		if string(copied.Data["password"]) != "rotated-by-the-customer-0123456789" {
			return fmt.Errorf("rotation not propagated yet")
		}
		return nil
	})
	get(t, creds, "tenant-smallco", "database-credentials")
	if string(creds.Data["password"]) != "rotated-by-the-customer-0123456789" {
		t.Error("the operator overwrote the customer's rotated password")
	}

	got := waitForCondition(t, "smallco", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "DatabaseNotReady")
	if got.Status.Database.CredentialsSecret != "database-credentials" || got.Status.Database.ReadWriteService != "shared-pg-rw.shared-db.svc" {
		t.Errorf("status.database = %+v", got.Status.Database)
	}
	// Stand-in for CloudNativePG (envtest has none): the database is created on the shared
	// cluster, but the tenant is not Ready until its role (and password) is applied too.
	db.Status.Applied = ptr.To(true)
	if err := admin.Status().Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, "smallco", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "DatabaseNotReady")
	get(t, role, shared, "tenant-smallco")
	role.Status.Applied = ptr.To(false)
	role.Status.Message = "secrets \"tenant-smallco-credentials\" is forbidden"
	if err := admin.Status().Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		got := &tenancyv1alpha1.Tenant{}
		if err := admin.Get(ctx, client.ObjectKey{Name: "smallco"}, got); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionDatabaseReady); c == nil ||
			c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "could not apply the tenant's role") {
			return fmt.Errorf("DatabaseReady does not say the role is not applied: %+v", c)
		}
		return nil
	})
	get(t, role, shared, "tenant-smallco")
	role.Status.Applied, role.Status.Message = ptr.To(true), ""
	if err := admin.Status().Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	waitForReady(t, "smallco")
}

func TestDatabaseDeletePolicyUnderARetainedNamespace(t *testing.T) {
	ctx := context.Background()
	db := dedicated(false)
	db.DeletionPolicy = tenancyv1alpha1.DeletionPolicyDelete
	db.ConfirmDeletionWithoutBackup = true
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "dropdb"}, Spec: tenancyv1alpha1.TenantSpec{Database: db}})
	markClusterHealthy(t, "tenant-dropdb", nil) // stand-in for CloudNativePG
	waitForReady(t, "dropdb")
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Name: "dropdb"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Tenant still there: %v", err)
		}
		return nil
	})
	// The namespace is retained; the database, as its own policy says, is not.
	ns := &corev1.Namespace{}
	get(t, ns, "", "tenant-dropdb")
	if !ns.DeletionTimestamp.IsZero() || ns.Labels[tenancyv1alpha1.LabelRetained] != "true" {
		t.Errorf("namespace not retained: %+v", ns.ObjectMeta)
	}
	testenv.Eventually(t, wait, func() error {
		c := &cnpgv1.Cluster{}
		err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant-dropdb", Name: "postgres"}, c)
		if apierrors.IsNotFound(err) || (err == nil && !c.DeletionTimestamp.IsZero()) {
			return nil
		}
		return fmt.Errorf("the cluster is not being deleted: %v", err)
	})
}

func TestSharedDatabaseDeletionKeepsTheData(t *testing.T) {
	ctx := context.Background()
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "tinyco"},
		Spec: tenancyv1alpha1.TenantSpec{DeletionPolicy: tenancyv1alpha1.DeletionPolicyDelete,
			Database: &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared}}})
	key := client.ObjectKey{Namespace: sharedDBNamespace, Name: "tenant-tinyco"}
	testenv.Eventually(t, wait, func() error { return admin.Get(ctx, key, &cnpgv1.Database{}) })
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	// The Database and DatabaseRole objects go; their reclaim policy (retain) tells CloudNativePG to
	// keep the PostgreSQL database and role for the platform team. The copy of the credentials on
	// the shared cluster is not retained: it keeps its owner reference to the Tenant, so the garbage
	// collector deletes it (this suite has none; the check stands in for it).
	testenv.Eventually(t, wait, func() error {
		for _, obj := range []client.Object{&cnpgv1.Database{}, &cnpgv1.DatabaseRole{}} {
			if err := admin.Get(ctx, key, obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T still there: %v", obj, err)
			}
		}
		return nil
	})
	// Stand-in for the namespace controller, which envtest does not run: it would empty the
	// namespace the operator deleted and finalize it. We finalize it.
	testenv.Eventually(t, wait, func() error {
		ns, err := clientset.CoreV1().Namespaces().Get(ctx, "tenant-tinyco", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil || ns.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace tenant-tinyco not being deleted yet: %v", err)
		}
		ns.Spec.Finalizers = nil
		_, err = clientset.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
		return err
	})
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Name: "tinyco"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Tenant still there: %v", err)
		}
		return nil
	})
	copied := &corev1.Secret{}
	get(t, copied, sharedDBNamespace, "tenant-tinyco-credentials")
	if copied.Labels[tenancyv1alpha1.LabelRetained] != "" || metav1.GetControllerOf(copied) == nil || metav1.GetControllerOf(copied).UID != tnt.UID {
		t.Errorf("the credentials copy of a deleted database was retained (labels %v, owner %v); the garbage collector must delete it",
			copied.Labels, metav1.GetControllerOf(copied))
	}
}

// Retain on the shared cluster keeps the credentials too: the tenant's Secret and its copy lose
// their owner references to the Tenant (envtest runs no garbage collector; make test-cluster runs the
// real one), keep the password, and a new Tenant of the same name adopts them.
func TestSharedRetainKeepsTheCredentialsAndIsAdopted(t *testing.T) {
	ctx := context.Background()
	spec := tenancyv1alpha1.TenantSpec{DeletionPolicy: tenancyv1alpha1.DeletionPolicyRetain,
		Database: &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared}}
	tnt := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "keepsh"}, Spec: spec})
	creds, copied := &corev1.Secret{}, &corev1.Secret{}
	testenv.Eventually(t, wait, func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: sharedDBNamespace, Name: "tenant-keepsh-credentials"}, copied)
	})
	get(t, creds, "tenant-keepsh", "database-credentials")
	password := string(creds.Data["password"])
	if err := admin.Delete(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if err := admin.Get(ctx, client.ObjectKey{Name: "keepsh"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Tenant still there: %v", err)
		}
		return nil
	})
	get(t, creds, "tenant-keepsh", "database-credentials")
	get(t, copied, sharedDBNamespace, "tenant-keepsh-credentials")
	for _, s := range []*corev1.Secret{creds, copied} {
		if len(s.OwnerReferences) != 0 || s.Labels[tenancyv1alpha1.LabelRetained] != "true" || string(s.Data["password"]) != password {
			t.Errorf("Secret %s/%s was not retained cleanly: owners %v, labels %v, password kept %v",
				s.Namespace, s.Name, s.OwnerReferences, s.Labels, string(s.Data["password"]) == password)
		}
	}

	// Adopted by a new Tenant of the same name: owned again, not labelled retained, same password.
	again := createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "keepsh"}, Spec: spec})
	testenv.Eventually(t, wait, func() error {
		for _, s := range []*corev1.Secret{creds, copied} {
			if err := admin.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
				return err
			}
			if owner := metav1.GetControllerOf(s); owner == nil || owner.UID != again.UID || s.Labels[tenancyv1alpha1.LabelRetained] != "" {
				return fmt.Errorf("Secret %s/%s not adopted yet: owner %v, labels %v", s.Namespace, s.Name, owner, s.Labels)
			}
			if string(s.Data["password"]) != password {
				return fmt.Errorf("Secret %s/%s lost the retained password", s.Namespace, s.Name)
			}
		}
		return nil
	})
}

// The Barman Cloud plugin reports backups in the ObjectStore's recovery window, not in the
// Cluster's status, and CloudNativePG reports WAL archiving in the Cluster's ContinuousArchiving
// condition: the Tenant shows both, and is not Ready while archiving fails. Stand-ins for the
// plugin and CloudNativePG write those statuses (the real cluster suite runs the real ones).
func TestPluginBackupsAndArchivingShowOnTheTenant(t *testing.T) {
	ctx := context.Background()
	createTenant(t, &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "walco"},
		Spec: tenancyv1alpha1.TenantSpec{Database: dedicated(true)}})
	const ns = "tenant-walco"
	first, last := "2026-11-20T02:00:05Z", "2026-11-22T02:00:07Z"
	testenv.Eventually(t, wait, func() error {
		store := &unstructured.Unstructured{}
		store.SetAPIVersion("barmancloud.cnpg.io/v1")
		store.SetKind("ObjectStore")
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "postgres-backups"}, store); err != nil {
			return err
		}
		if err := unstructured.SetNestedMap(store.Object, map[string]any{"postgres": map[string]any{
			"firstRecoverabilityPoint": first, "lastSuccessfulBackupTime": last,
		}}, "status", "serverRecoveryWindow"); err != nil {
			return err
		}
		return admin.Status().Update(ctx, store)
	})
	archiving := func(status metav1.ConditionStatus, reason, message string) func(*cnpgv1.ClusterStatus) {
		return func(st *cnpgv1.ClusterStatus) {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: string(cnpgv1.ConditionContinuousArchiving),
				Status: status, Reason: reason, Message: message})
		}
	}

	markClusterHealthy(t, ns, archiving(metav1.ConditionFalse, "ContinuousArchivingFailing", "unexpected failure invoking barman-cloud-wal-archive: exit status 4"))
	got := waitForCondition(t, "walco", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonArchivingFailing)
	if c := meta.FindStatusCondition(got.Status.Conditions, tenancyv1alpha1.ConditionDatabaseReady); !strings.Contains(c.Message, "exit status 4") {
		t.Errorf("DatabaseReady says %q; want CloudNativePG's reason in it", c.Message)
	}
	if got.Status.Phase != tenancyv1alpha1.TenantDegraded || got.Status.Database.WALArchiving != tenancyv1alpha1.WALArchivingFailing {
		t.Errorf("phase %s, walArchiving %q; want Degraded and Failing", got.Status.Phase, got.Status.Database.WALArchiving)
	}

	markClusterHealthy(t, ns, archiving(metav1.ConditionTrue, "ContinuousArchivingSuccess", "Continuous archiving is working"))
	got = waitForReady(t, "walco")
	db := got.Status.Database
	if db.WALArchiving != tenancyv1alpha1.WALArchivingWorking || db.FirstRecoverabilityPoint == nil || db.LastSuccessfulBackup == nil ||
		db.FirstRecoverabilityPoint.UTC().Format(time.RFC3339) != first || db.LastSuccessfulBackup.UTC().Format(time.RFC3339) != last {
		t.Errorf("status.database = %+v; want archiving Working, recoverable from %s, last backup %s (the ObjectStore's window)", db, first, last)
	}

	markClusterHealthy(t, ns, func(st *cnpgv1.ClusterStatus) {
		archiving(metav1.ConditionTrue, "ContinuousArchivingSuccess", "")(st)
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: string(cnpgv1.ConditionBackup),
			Status: metav1.ConditionFalse, Reason: "LastBackupFailed", Message: "can't execute backup: exit status 2"})
	})
	waitForCondition(t, "walco", tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonBackupFailing)
}

// waitForConditionMessage waits for the Tenant's Ready condition to carry the message fragment.
func waitForConditionMessage(t *testing.T, name, fragment string) *tenancyv1alpha1.Tenant {
	t.Helper()
	var got *tenancyv1alpha1.Tenant
	testenv.Eventually(t, wait, func() error {
		got = &tenancyv1alpha1.Tenant{}
		if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
			return err
		}
		if c := findCondition(got, tenancyv1alpha1.ConditionReady); !strings.Contains(c.Message, fragment) {
			return fmt.Errorf("Ready is %+v, want a message with %q", c, fragment)
		}
		return nil
	})
	return got
}
