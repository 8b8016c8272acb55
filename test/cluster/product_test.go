//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestProduct runs the tenants' stories side by side (each PostgreSQL takes half a minute to come
// up), then watches the operator for two minutes with every remaining tenant Ready.
func TestProduct(t *testing.T) {
	top = t
	t.Run("stories", func(t *testing.T) {
		t.Run("DedicatedDatabases", testDedicatedDatabases)
		t.Run("SharedDatabases", testSharedDatabases)
		t.Run("RetainSurvivesTheGarbageCollectorAndIsAdopted", testRetain)
		t.Run("RetainOnTheSharedClusterSurvivesAndIsAdopted", testRetainShared)
		t.Run("DeleteLeavesNothingLabelledForTheTenant", testDelete)
	})
	if t.Failed() {
		return
	}
	t.Run("OperatorIsSilentInSteadyState", testSilence)
}

// top is TestProduct: tenants are deleted when it ends, so that the steady-state check sees them all.
var top *testing.T

// deleteAtEnd deletes the tenants when TestProduct ends (after the steady-state check).
func deleteAtEnd(names ...string) {
	top.Cleanup(func() {
		for _, name := range names {
			deleteTenant(top, name)
		}
	})
}

// ---- dedicated ----

func testDedicatedDatabases(t *testing.T) {
	t.Parallel()
	solo, pair := "db-solo", "db-pair"
	applyTenant(t, solo, dedicated(1, "Delete"))
	applyTenant(t, pair, dedicated(2, "Delete"))
	deleteAtEnd(solo, pair)
	waitReady(t, solo)
	waitReady(t, pair)

	t.Run("ApplicationConnectsWithVaultCredentialsOverVerifiedTLS", func(t *testing.T) {
		log := psqlPod{namespace: ns(solo), name: "app", credentials: "app-db", caSecret: "postgres-ca", script: `
reach || { echo UNREACHABLE; exit 1; }
psql -X -v ON_ERROR_STOP=1 -tA <<'SQL'
create table orders (id int primary key, item text);
insert into orders values (1, 'widget'), (2, 'gadget');
select 'ssl=' || ssl from pg_stat_ssl where pid = pg_backend_pid();
select string_agg(item, ',' order by id) from orders;
SQL`}.mustRun(t)
		for _, want := range []string{"ssl=true", "widget,gadget"} {
			if !strings.Contains(log, want) {
				t.Errorf("the application's output lacks %q:\n%s", want, log)
			}
		}
		// The Secret the application used came from Vault, through the tenant's ExternalSecret.
		secret := &corev1.Secret{}
		if err := get(secret, ns(solo), "app-db"); err != nil {
			t.Fatal(err)
		}
		if owner := metav1.GetControllerOf(secret); owner == nil || owner.Kind != "ExternalSecret" {
			t.Errorf("Secret app-db is not ESO's (controller %v)", owner)
		}
	})

	t.Run("SecondInstanceStreamsFromThePrimary", func(t *testing.T) {
		cluster := &cnpgv1.Cluster{}
		if err := get(cluster, ns(pair), "postgres"); err != nil {
			t.Fatal(err)
		}
		if cluster.Status.ReadyInstances != 2 {
			t.Fatalf("CloudNativePG reports %d ready instances, want 2", cluster.Status.ReadyInstances)
		}
		got := instanceSQL(t, ns(pair), cluster.Status.CurrentPrimary, "select count(*) from pg_stat_replication where state = 'streaming'")
		if got != "1" {
			t.Errorf("streaming replicas of %s: %s, want 1", cluster.Status.CurrentPrimary, got)
		}
		log := psqlPod{namespace: ns(pair), name: "app", credentials: "app-db", caSecret: "postgres-ca", script: `
reach || { echo UNREACHABLE; exit 1; }
psql -X -v ON_ERROR_STOP=1 -tA -c "create table t (v text)" -c "insert into t values ('replicated')" -c "select v from t"`}.mustRun(t)
		if !strings.Contains(log, "replicated") {
			t.Errorf("the application's output lacks its row:\n%s", log)
		}
	})

	t.Run("PasswordsAreSCRAMAndConnectionsWithoutTLSAreRefused", func(t *testing.T) {
		primary := currentPrimary(t, ns(solo))
		roles := instanceSQL(t, ns(solo), primary, "select rolname || ':' || left(rolpassword, 14) from pg_authid where rolpassword is not null")
		if roles == "" {
			t.Fatal("no role has a password")
		}
		for _, line := range strings.Split(roles, "\n") {
			if !strings.HasSuffix(line, ":SCRAM-SHA-256$") {
				t.Errorf("role %s has a password not stored as SCRAM-SHA-256", strings.SplitN(line, ":", 2)[0])
			}
		}
		log := psqlPod{namespace: ns(solo), name: "no-tls", credentials: "app-db", caSecret: "postgres-ca", script: `
reach; PGSSLMODE=disable psql -X -c 'select 1' 2>&1 && echo CONNECTED || true`}.mustRun(t)
		if strings.Contains(log, "CONNECTED") || !strings.Contains(log, "no encryption") {
			t.Errorf("a connection without TLS was not refused by pg_hba:\n%s", log)
		}
	})

	t.Run("AnotherTenantCannotReachNorLogIn", func(t *testing.T) {
		target := "postgres-rw." + ns(solo) + ".svc"
		// The same wait for the server as any application's: 30 s of refused connections.
		// Encrypted, but without its own tenant's CA, which would fail the other server's
		// certificate (libpq verifies sslmode=require against a root certificate it finds).
		script := fmt.Sprintf(`export PGHOST=%s PGSSLMODE=require; unset PGSSLROOTCERT
if reach; then psql -X -c 'select 1' 2>&1 && echo CONNECTED || true; else echo UNREACHABLE; fi`, target)
		log := psqlPod{namespace: ns(pair), name: "intruder", credentials: "app-db", caSecret: "postgres-ca", script: script}.mustRun(t)
		if !strings.Contains(log, "UNREACHABLE") {
			t.Errorf("a pod of tenant %s reached %s's database (NetworkPolicy not enforced):\n%s", pair, solo, log)
		}
		// Open the network (as a platform admin could by mistake): the database still refuses
		// the other tenant's credentials.
		kubectl(t, fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: test-allow-%s, namespace: %s}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}}]
`, pair, ns(solo), ns(pair)), "apply", "-f", "-")
		defer kubectl(t, "", "-n", ns(solo), "delete", "networkpolicy", "test-allow-"+pair)
		var last string
		testenv.Eventually(t, time.Minute, func() error {
			_, last = psqlPod{namespace: ns(pair), name: "intruder", credentials: "app-db", caSecret: "postgres-ca", script: script}.run(t)
			if strings.Contains(last, "UNREACHABLE") {
				return fmt.Errorf("the allowing policy is not in force yet:\n%s", last)
			}
			return nil
		})
		if strings.Contains(last, "CONNECTED") || !strings.Contains(last, "password authentication failed") {
			t.Errorf("tenant %s's credentials were not refused by %s's database:\n%s", pair, solo, last)
		}
	})

	t.Run("RotatedPasswordReachesTheApplicationThroughVault", func(t *testing.T) {
		old := &corev1.Secret{}
		if err := get(old, ns(solo), "app-db"); err != nil {
			t.Fatal(err)
		}
		// Keep the old credentials for the refusal below (copied, never printed).
		oldCopy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "old-db", Namespace: ns(solo)}, Data: old.Data}
		if err := k8s.Create(context.Background(), oldCopy); err != nil {
			t.Fatal(err)
		}
		// The single owner of the password is CNPG's app Secret (docs/database.md).
		password := randomValue(t)
		kubectl(t, fmt.Sprintf(`{"stringData": {"password": %q}}`, password), "-n", ns(solo), "patch", "secret", "postgres-app", "--type=merge", "--patch-file=/dev/stdin")
		testenv.Eventually(t, propagation, func() error {
			s := &corev1.Secret{}
			if err := get(s, ns(solo), "app-db"); err != nil {
				return err
			}
			if string(s.Data["password"]) != password {
				return fmt.Errorf("Secret app-db does not hold the rotated password yet")
			}
			return nil
		})
		testenv.Eventually(t, propagation, func() error {
			if ok, log := (psqlPod{namespace: ns(solo), name: "rotated", credentials: "app-db", caSecret: "postgres-ca",
				script: `reach; psql -X -tA -c "select count(*) from orders"`}).run(t); !ok {
				return fmt.Errorf("the new password does not log in yet:\n%s", log)
			}
			return nil
		})
		log := psqlPod{namespace: ns(solo), name: "stale", credentials: "old-db", caSecret: "postgres-ca",
			script: `reach; psql -X -c 'select 1' 2>&1 && echo CONNECTED || true`}.mustRun(t)
		if strings.Contains(log, "CONNECTED") || !strings.Contains(log, "password authentication failed") {
			t.Errorf("the old password was not refused after the rotation:\n%s", log)
		}
	})
}

func currentPrimary(t *testing.T, namespace string) string {
	t.Helper()
	cluster := &cnpgv1.Cluster{}
	if err := get(cluster, namespace, "postgres"); err != nil {
		t.Fatal(err)
	}
	return cluster.Status.CurrentPrimary
}

// ---- shared ----

func testSharedDatabases(t *testing.T) {
	t.Parallel()
	one, two := "sh-one", "sh-two"
	applyTenant(t, one, shared("Delete"))
	applyTenant(t, two, shared("Delete"))
	deleteAtEnd(one, two)
	waitReady(t, one)
	waitReady(t, two)
	copySharedCA(t, one)
	copySharedCA(t, two)
	log := psqlPod{namespace: ns(one), name: "app", credentials: "app-db", caSecret: "shared-ca", script: `
reach || { echo UNREACHABLE; exit 1; }
psql -X -v ON_ERROR_STOP=1 -tA -c "create table if not exists notes (v text)" -c "insert into notes values ('mine')" -c "select v from notes"`}.mustRun(t)
	if !strings.Contains(log, "mine") {
		t.Errorf("the application's output lacks its row:\n%s", log)
	}
	twoCreds := &corev1.Secret{}
	if err := get(twoCreds, ns(two), "app-db"); err != nil {
		t.Fatal(err)
	}
	log = psqlPod{namespace: ns(one), name: "intruder", credentials: "app-db", caSecret: "shared-ca",
		script: fmt.Sprintf(`reach; PGDATABASE=%s psql -X -c 'select 1' 2>&1 && echo CONNECTED || true`, twoCreds.Data["dbname"])}.mustRun(t)
	if strings.Contains(log, "CONNECTED") || !strings.Contains(log, "pg_hba.conf rejects connection") {
		t.Errorf("tenant %s's role was not refused tenant %s's database on the shared cluster:\n%s", one, two, log)
	}
}

// ---- deletion ----

func testRetain(t *testing.T) {
	t.Parallel()
	name := "keep"
	applyTenant(t, name, dedicated(1, "Retain"))
	waitReady(t, name)
	psqlPod{namespace: ns(name), name: "app", credentials: "app-db", caSecret: "postgres-ca",
		script: `reach; psql -X -v ON_ERROR_STOP=1 -c "create table kept (v text)" -c "insert into kept values ('survives')"`}.mustRun(t)

	tenant := &tenancyv1alpha1.Tenant{}
	if err := get(tenant, "", name); err != nil {
		t.Fatal(err)
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := k8s.List(context.Background(), pvcs, client.InNamespace(ns(name))); err != nil || len(pvcs.Items) == 0 {
		t.Fatalf("no PersistentVolumeClaims in %s (%v)", ns(name), err)
	}
	deleteThroughTheGarbageCollector(t, tenant)
	namespace := &corev1.Namespace{}
	if err := get(namespace, "", ns(name)); err != nil || namespace.DeletionTimestamp != nil {
		t.Fatalf("the retained namespace is gone or going (%v)", err)
	}
	if namespace.Labels[tenancyv1alpha1.LabelRetained] == "" {
		t.Errorf("namespace %s is not labelled retained: %v", ns(name), namespace.Labels)
	}
	for _, o := range []struct {
		obj  client.Object
		name string
	}{{&cnpgv1.Cluster{}, "postgres"}, {&corev1.Secret{}, "postgres-app"}, {&corev1.Secret{}, "postgres-ca"}} {
		if err := get(o.obj, ns(name), o.name); err != nil || o.obj.GetDeletionTimestamp() != nil {
			t.Errorf("retained %T %s is gone or going (%v)", o.obj, o.name, err)
		}
	}
	for _, pvc := range pvcs.Items {
		if err := get(&corev1.PersistentVolumeClaim{}, ns(name), pvc.Name); err != nil {
			t.Errorf("retained PersistentVolumeClaim %s: %v", pvc.Name, err)
		}
		if err := get(&corev1.PersistentVolume{}, "", pvc.Spec.VolumeName); err != nil {
			t.Errorf("retained PersistentVolume %s: %v", pvc.Spec.VolumeName, err)
		}
	}

	// A new Tenant of the same name adopts it all and reads the same data.
	applyTenant(t, name, dedicated(1, "Delete"))
	deleteAtEnd(name)
	waitReady(t, name)
	log := psqlPod{namespace: ns(name), name: "app-again", credentials: "app-db", caSecret: "postgres-ca",
		script: `reach; psql -X -tA -v ON_ERROR_STOP=1 -c "select v from kept"`}.mustRun(t)
	if !strings.Contains(log, "survives") {
		t.Errorf("the adopted database lacks the row written before the deletion:\n%s", log)
	}
}

func testRetainShared(t *testing.T) {
	t.Parallel()
	name := "keep-sh"
	applyTenant(t, name, shared("Retain"))
	waitReady(t, name)
	copySharedCA(t, name)
	psqlPod{namespace: ns(name), name: "app", credentials: "app-db", caSecret: "shared-ca",
		script: `reach; psql -X -v ON_ERROR_STOP=1 -c "create table if not exists kept (v text)" -c "insert into kept values ('survives')"`}.mustRun(t)
	tenant := &tenancyv1alpha1.Tenant{}
	if err := get(tenant, "", name); err != nil {
		t.Fatal(err)
	}
	deleteThroughTheGarbageCollector(t, tenant)
	for _, o := range []struct {
		obj             client.Object
		namespace, name string
	}{
		{&corev1.Namespace{}, "", ns(name)},
		{&corev1.Secret{}, ns(name), "database-credentials"},
		{&corev1.Secret{}, "postgres-shared", "tenant-" + name + "-credentials"},
		{&cnpgv1.Database{}, "postgres-shared", "tenant-" + name},
		{&cnpgv1.DatabaseRole{}, "postgres-shared", "tenant-" + name},
	} {
		if err := get(o.obj, o.namespace, o.name); err != nil || o.obj.GetDeletionTimestamp() != nil {
			t.Errorf("retained %T %s/%s is gone or going (%v)", o.obj, o.namespace, o.name, err)
		}
	}
	applyTenant(t, name, shared("Delete"))
	deleteAtEnd(name)
	waitReady(t, name)
	log := psqlPod{namespace: ns(name), name: "app-again", credentials: "app-db", caSecret: "shared-ca",
		script: `reach; psql -X -tA -v ON_ERROR_STOP=1 -c "select v from kept"`}.mustRun(t)
	if !strings.Contains(log, "survives") {
		t.Errorf("the adopted shared database lacks the row written before the deletion:\n%s", log)
	}
}

// copySharedCA gives the tenant's namespace the shared cluster's CA certificate, as the platform
// does for its shared-cluster tenants (the operator does not).
func copySharedCA(t *testing.T, tenant string) {
	t.Helper()
	ca := &corev1.Secret{}
	if err := get(ca, "postgres-shared", "shared-ca"); err != nil {
		t.Fatal(err)
	}
	copied := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shared-ca", Namespace: ns(tenant)},
		Data: map[string][]byte{"ca.crt": ca.Data["ca.crt"]}}
	if err := k8s.Create(context.Background(), copied); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
}

// deleteThroughTheGarbageCollector deletes the Tenant and returns once the garbage collector has
// processed its deletion: a canary ConfigMap owned by the Tenant, which only the garbage collector
// deletes, is gone.
func deleteThroughTheGarbageCollector(t *testing.T, tenant *tenancyv1alpha1.Tenant) {
	t.Helper()
	canary := gcCanary(t, tenant)
	deleteTenant(t, tenant.Name)
	testenv.Eventually(t, 2*time.Minute, func() error {
		if err := get(&corev1.ConfigMap{}, canary.Namespace, canary.Name); !isNotFound(err) {
			return fmt.Errorf("the garbage collector has not deleted the canary yet (%v)", err)
		}
		return nil
	})
}

func gcCanary(t *testing.T, tenant *tenancyv1alpha1.Tenant) *corev1.ConfigMap {
	t.Helper()
	canary := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "gc-canary-" + tenant.Name, Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: tenancyv1alpha1.GroupVersion.String(), Kind: "Tenant", Name: tenant.Name, UID: tenant.UID}},
	}}
	if err := k8s.Create(context.Background(), canary); err != nil {
		t.Fatal(err)
	}
	return canary
}

func testDelete(t *testing.T) {
	t.Parallel()
	name := "gone"
	applyTenant(t, name, dedicated(1, "Delete"))
	waitReady(t, name)
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := k8s.List(context.Background(), pvcs, client.InNamespace(ns(name))); err != nil || len(pvcs.Items) == 0 {
		t.Fatalf("no PersistentVolumeClaims in %s (%v)", ns(name), err)
	}
	deleteTenant(t, name)
	testenv.Eventually(t, 3*time.Minute, func() error {
		if left := labelledFor(t, name); len(left) > 0 {
			return fmt.Errorf("still labelled for tenant %s: %v", name, left)
		}
		if err := get(&corev1.Namespace{}, "", ns(name)); !isNotFound(err) {
			return fmt.Errorf("namespace %s still exists (%v)", ns(name), err)
		}
		for _, pvc := range pvcs.Items {
			if err := get(&corev1.PersistentVolume{}, "", pvc.Spec.VolumeName); !isNotFound(err) {
				return fmt.Errorf("PersistentVolume %s still exists (%v)", pvc.Spec.VolumeName, err)
			}
			if _, err := os.Stat(filepath.Join(clusterDir, "volumes", pvc.Spec.VolumeName)); !os.IsNotExist(err) {
				return fmt.Errorf("the volume's directory is still on the node (%v)", err)
			}
		}
		return nil
	})
}

// labelledFor lists every object, of every listable kind, labelled for the tenant.
func labelledFor(t *testing.T, tenant string) []string {
	t.Helper()
	kinds := strings.Fields(kubectl(t, "", "api-resources", "--verbs=list", "-o", "name"))
	out := kubectl(t, "", "get", strings.Join(kinds, ","), "--all-namespaces", "--ignore-not-found",
		"-l", tenancyv1alpha1.LabelTenant+"="+tenant, "-o", "name")
	return strings.Fields(out)
}

// ---- steady state ----

func testSilence(t *testing.T) {
	tenants := &tenancyv1alpha1.TenantList{}
	if err := k8s.List(context.Background(), tenants); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range tenants.Items {
		waitReady(t, tenant.Name)
	}
	start := time.Now()
	window := 2 * time.Minute
	t.Logf("watching the operator's writes for %s with %d tenants Ready", window, len(tenants.Items))
	for time.Since(start) < window {
		if writes := auditedWrites(t, start); len(writes) > 0 {
			t.Fatalf("the operator wrote %d times in a steady state with CloudNativePG and ESO running:\n%s",
				len(writes), strings.Join(writes, "\n"))
		}
		time.Sleep(5 * time.Second) // the observation window's polling interval, not a synchronisation
	}
	if writes := auditedWrites(t, start); len(writes) > 0 {
		t.Fatalf("the operator wrote %d times in a steady state:\n%s", len(writes), strings.Join(writes, "\n"))
	}
}
