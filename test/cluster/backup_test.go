//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// backups bounds a backup (base backup of a small database, to the object store on the node).
const backups = 4 * time.Minute

// TestBackupsAndRestores is the disaster-recovery story on the real cluster: CloudNativePG's Barman
// Cloud plugin archiving a tenant's WAL and taking its base backups into the tenant's own bucket on
// the object store (versitygw), the final backup before a Delete, a restore into a new Tenant with
// every row, a point-in-time restore, an object-store outage, and another tenant's keys refused.
func TestBackupsAndRestores(t *testing.T) {
	const name, other = "bk", "bk-other"
	objectStoreAccount(t, name)
	objectStoreAccount(t, other)

	// Server names of this run's own: the bucket outlives the tenant, and the plugin refuses to
	// archive where an earlier run's database archived (make test-cluster twice on one cluster).
	server := "pg-" + randomValue(t)[:6]
	// Scheduled a few minutes from now, hourly: one scheduled backup fires during the test.
	at := time.Now().UTC().Add(3 * time.Minute)
	applyTenant(t, name, backedUp(fmt.Sprintf("%d %d * * * *", at.Second(), at.Minute()), server))
	t.Cleanup(func() {
		if _, err := kubectlErr("", "get", "tenant", name); err == nil {
			kubectl(t, "", "annotate", "tenant", name, "tenancy.tenantctl.io/skip-final-backup=test cleanup", "--overwrite")
			deleteTenant(t, name)
		}
	})
	waitReady(t, name)
	st := waitArchiving(t, name, tenancyv1alpha1.WALArchivingWorking)
	t.Logf("WAL archiving works; status.database: lastSuccessfulBackup=%v firstRecoverabilityPoint=%v", st.LastSuccessfulBackup, st.FirstRecoverabilityPoint)

	// An on-demand backup first: the base a point-in-time restore starts from.
	onDemand := runBackup(t, ns(name), "on-demand")

	// Two batches of writes with a point in time between them, as the database's clock reads it.
	write(t, name, 1, 100)
	between := strings.TrimSpace(sql(t, name, "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"))
	write(t, name, 101, 200)

	t.Run("ScheduledBackupCompletes", func(t *testing.T) {
		var done *cnpgv1.Backup
		testenv.Eventually(t, 6*time.Minute, func() error {
			list := &cnpgv1.BackupList{}
			if err := k8s.List(context.Background(), list, client.InNamespace(ns(name))); err != nil {
				return err
			}
			for i := range list.Items {
				b := &list.Items[i]
				if owner := metav1.GetControllerOf(b); owner != nil && owner.Kind == "ScheduledBackup" && b.Status.Phase == cnpgv1.BackupPhaseCompleted {
					done = b
					return nil
				}
			}
			return fmt.Errorf("no scheduled backup completed yet (%d Backups)", len(list.Items))
		})
		t.Logf("scheduled backup %s completed: %s", done.Name, done.Status.BackupID)
	})
	t.Run("TenantShowsTheRecoveryWindow", func(t *testing.T) {
		testenv.Eventually(t, 2*time.Minute, func() error {
			st := tenantStatus(t, name).Database
			if st.FirstRecoverabilityPoint == nil || st.LastSuccessfulBackup == nil {
				return fmt.Errorf("status.database has no recovery window yet: %+v", st)
			}
			if st.LastSuccessfulBackup.Before(onDemand.Status.StoppedAt) {
				return fmt.Errorf("lastSuccessfulBackup %v is before the on-demand backup's end %v", st.LastSuccessfulBackup, onDemand.Status.StoppedAt)
			}
			return nil
		})
	})
	write(t, name, 201, 300)

	// docs/runbooks/restore.md, executed as written, to the end of the archive: the Delete's final
	// backup is taken and is in the object store before the database goes, and the Tenant created
	// again from the archive has every row written before it.
	steps := runRunbook(t, "runbooks/restore.md", "TENANT="+name, "TARGET_TIME=")
	deleted := stepStarted(t, steps, "4.")
	final := newestBackupInStore(t, name, server)
	if final.end.Before(deleted) {
		t.Fatalf("the newest backup in the object store ended at %v, before the deletion at %v: no final backup", final.end, deleted)
	}
	t.Logf("final backup %s is in the object store (ended %v)", final.id, final.end.Format(time.RFC3339))

	t.Run("RestoreIntoANewTenantLosesNoRow", func(t *testing.T) {
		rto := stepStarted(t, steps, "7.").Sub(stepStarted(t, steps, "5."))
		rows, _ := strconv.Atoi(strings.TrimSpace(sqlOnceAuthenticated(t, name, "select count(*) from batches")))
		t.Logf("RTO: %s from the Tenant's creation to Ready with its data; RPO: %d of 300 rows lost (restore to the end of the archive); the whole runbook %s",
			rto.Round(time.Second), 300-rows, time.Since(steps[0].started).Round(time.Second))
		if rows != 300 {
			t.Errorf("the restored database has %d rows, want the 300 written before the final backup", rows)
		}
		recordDR(t, "restore-latest", rto, 300-rows)
	})
	if t.Failed() {
		return
	}

	t.Run("ArchivingOutageDegradesAndRecoversWithoutLosingWAL", func(t *testing.T) {
		waitArchiving(t, name, tenancyv1alpha1.WALArchivingWorking)
		clusterScript(t, "objectstore", "stop")
		restarted := false
		defer func() {
			if !restarted {
				clusterScript(t, "objectstore", "start")
			}
		}()
		write(t, name, 301, 310)
		// Switching the WAL segment takes a superuser: the instance's own, over its local socket.
		switched := strings.TrimSpace(instanceSQL(t, ns(name), currentPrimary(t, ns(name)), "select pg_walfile_name(pg_switch_wal())"))
		failingSince := time.Now()
		waitCondition(t, name, tenancyv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonArchivingFailing, 6*time.Minute)
		t.Logf("DatabaseReady=False ArchivingFailing %s after the WAL switch", time.Since(failingSince).Round(time.Second))
		clusterScript(t, "objectstore", "start")
		restarted = true
		waitReady(t, name)
		waitArchiving(t, name, tenancyv1alpha1.WALArchivingWorking)
		// PostgreSQL keeps a segment until it is archived: the switched one reaches the store.
		testenv.Eventually(t, 3*time.Minute, func() error {
			last := strings.TrimSpace(instanceSQL(t, ns(name), currentPrimary(t, ns(name)), "select coalesce(last_archived_wal, '') from pg_stat_archiver"))
			if last < switched {
				return fmt.Errorf("last archived WAL %q, want %s or later", last, switched)
			}
			return nil
		})
	})

	t.Run("AnotherTenantsBucketIsRefused", func(t *testing.T) {
		log := s3Pod(t, ns(name), fmt.Sprintf(`
own, other = "tenant-%s", "tenant-%s"
def attempt(what, f):
    try:
        f()
        print(what, "ALLOWED")
    except botocore.exceptions.ClientError as e:
        print(what, "REFUSED", e.response["Error"]["Code"])
attempt("list own", lambda: s3.list_objects_v2(Bucket=own, MaxKeys=1))
attempt("list other", lambda: s3.list_objects_v2(Bucket=other, MaxKeys=1))
attempt("put other", lambda: s3.put_object(Bucket=other, Key="intruder", Body=b"x"))
attempt("get other", lambda: s3.get_object(Bucket=other, Key="anything"))
`, name, other))
		for _, want := range []string{"list own ALLOWED", "list other REFUSED AccessDenied", "put other REFUSED AccessDenied", "get other REFUSED AccessDenied"} {
			if !strings.Contains(log, want) {
				t.Errorf("with tenant %s's keys, want %q:\n%s", name, want, log)
			}
		}
	})

	t.Run("PointInTimeRestoreHasExactlyTheFirstBatch", func(t *testing.T) {
		// The runbook again, to the point between the batches: the Tenant was restored since, so the
		// runbook finds that point in the archive it was restored from.
		steps := runRunbook(t, "runbooks/restore.md", "TENANT="+name, "TARGET_TIME="+between)
		rto := stepStarted(t, steps, "7.").Sub(stepStarted(t, steps, "5."))
		rows := strings.TrimSpace(sqlOnceAuthenticated(t, name, "select count(*) || ' ' || min(id) || '-' || max(id) from batches"))
		t.Logf("point-in-time restore to %s: rows %s; RTO %s", between, rows, rto.Round(time.Second))
		if rows != "100 1-100" {
			t.Errorf("restored to %s between the batches: rows %q, want exactly the first batch (100 1-100)", between, rows)
		}
		recordDR(t, "restore-point-in-time", rto, 0)
	})
}

// objectStoreAccount gives the tenant its own account and bucket on the cluster's object store,
// its keys in Vault (hack/objectstore-tenant.sh), as the platform does before creating the Tenant.
func objectStoreAccount(t *testing.T, tenant string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "objectstore-tenant.sh"), tenant)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/objectstore-tenant.sh %s: %v\n%s", tenant, err, out)
	}
}

func clusterScript(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "cluster.sh"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// backedUp is a Tenant spec with a Dedicated database of one instance, backed up on schedule under
// serverName, deleted under Delete (with its final backup), its network fenced both ways (DenyAll):
// the database reaches the API server and the object store only through the platform's egress
// rules (platformEgress in hack/cluster.sh).
func backedUp(schedule, serverName string) string {
	return fmt.Sprintf(`  owners:
  - {kind: User, name: "oidc:owner@example.com"}
  deletionPolicy: Delete
  isolation: {networkPolicy: DenyAll}
  database:
    mode: Dedicated
    instances: 1
    postgresVersion: 15
    storage: {size: 1Gi}
    backup: {schedule: %q, retentionPolicy: 7d, serverName: %s}
  secrets:
    items:
    - {name: app-db, remoteKey: database, refreshInterval: 10s}
`, schedule, serverName)
}

// write inserts rows from..to into the tenant's table batches, as the application (credentials from
// Vault, verified TLS).
func write(t *testing.T, tenant string, from, to int) {
	t.Helper()
	sql(t, tenant, fmt.Sprintf("create table if not exists batches (id int primary key, at timestamptz default clock_timestamp()); insert into batches (id) select generate_series(%d, %d)", from, to))
}

// sql runs statements as the tenant's application and returns psql's unaligned output.
func sql(t *testing.T, tenant, statements string) string {
	t.Helper()
	return psqlPod{namespace: ns(tenant), name: "app", credentials: "app-db", caSecret: "postgres-ca", script: fmt.Sprintf(`
reach || { echo UNREACHABLE; exit 1; }
psql -X -v ON_ERROR_STOP=1 -tA <<'SQL'
%s;
SQL`, statements)}.mustRun(t)
}

// sqlOnceAuthenticated is sql for a tenant just restored: its credentials reach the namespace from
// Vault after External Secrets Operator's next push and sync (up to a minute and a refresh), so the
// application retries until it logs in, as a real one would.
func sqlOnceAuthenticated(t *testing.T, tenant, statements string) string {
	t.Helper()
	var out string
	testenv.Eventually(t, propagation, func() error {
		ok, log := psqlPod{namespace: ns(tenant), name: "app", credentials: "app-db", caSecret: "postgres-ca", script: fmt.Sprintf(`
reach || { echo UNREACHABLE; exit 1; }
psql -X -v ON_ERROR_STOP=1 -tA <<'SQL'
%s;
SQL`, statements)}.run(t)
		if !ok {
			return fmt.Errorf("the application failed:\n%s", log)
		}
		out = log
		return nil
	})
	return out
}

func tenantStatus(t *testing.T, name string) tenancyv1alpha1.TenantStatus {
	t.Helper()
	tnt := &tenancyv1alpha1.Tenant{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tnt); err != nil {
		t.Fatal(err)
	}
	return tnt.Status
}

func waitArchiving(t *testing.T, name string, want tenancyv1alpha1.WALArchivingState) *tenancyv1alpha1.DatabaseStatus {
	t.Helper()
	var st *tenancyv1alpha1.DatabaseStatus
	testenv.Eventually(t, 3*time.Minute, func() error {
		st = tenantStatus(t, name).Database
		if st == nil || st.WALArchiving != want {
			return fmt.Errorf("status.database.walArchiving is not %s: %+v", want, st)
		}
		return nil
	})
	return st
}

// waitCondition waits as a user would, with kubectl wait on the condition's reason.
func waitCondition(t *testing.T, name, condition string, status metav1.ConditionStatus, reason string, within time.Duration) {
	t.Helper()
	testenv.Eventually(t, within, func() error {
		for _, c := range tenantStatus(t, name).Conditions {
			if c.Type == condition && c.Status == status && c.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("tenant %s: %s is not %s/%s", name, condition, status, reason)
	})
}

// runBackup takes an on-demand backup through the plugin, as a user would with kubectl, and waits
// for it to complete.
func runBackup(t *testing.T, namespace, name string) *cnpgv1.Backup {
	t.Helper()
	kubectl(t, fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Backup
metadata: {name: %s, namespace: %s}
spec:
  cluster: {name: postgres}
  method: plugin
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
`, name, namespace), "apply", "-f", "-")
	b := &cnpgv1.Backup{}
	testenv.Eventually(t, backups, func() error {
		if err := get(b, namespace, name); err != nil {
			return err
		}
		switch b.Status.Phase {
		case cnpgv1.BackupPhaseCompleted:
			return nil
		case cnpgv1.BackupPhaseFailed:
			t.Fatalf("backup %s/%s failed: %s", namespace, name, b.Status.Error)
		}
		return fmt.Errorf("backup %s/%s is %q", namespace, name, b.Status.Phase)
	})
	return b
}

type storedBackup struct {
	id  string
	end time.Time
}

// newestBackupInStore is the tenant's newest completed base backup under serverName in the object
// store itself.
func newestBackupInStore(t *testing.T, tenant, serverName string) storedBackup {
	t.Helper()
	all := backupsInStore(t, tenant, serverName, time.Time{})
	if len(all) == 0 {
		t.Fatalf("no completed backup of %s under %s in the object store", tenant, serverName)
	}
	return all[len(all)-1]
}

// backupsInStore reads the object store itself (versitygw's posix backend: a bucket is a
// directory) for the tenant's completed base backups under serverName that ended after since,
// oldest first: Barman writes <server>/base/<backup id>/backup.info, with status=DONE and its end
// time, once the backup is whole.
func backupsInStore(t *testing.T, tenant, serverName string, since time.Time) []storedBackup {
	t.Helper()
	base := filepath.Join(clusterDir, "objectstore", "data", "tenant-"+tenant, serverName, "base")
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatalf("the object store holds no backups for %s: %v", tenant, err)
	}
	var out []storedBackup
	for _, e := range entries {
		info, err := os.ReadFile(filepath.Join(base, e.Name(), "backup.info"))
		if err != nil || !strings.Contains(string(info), "\nstatus=DONE") {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "end_time="); ok {
				// Barman 3.4 writes e.g. 2026-11-30 05:01:02.123456+00:00.
				end, err := time.Parse("2006-01-02 15:04:05.999999-07:00", strings.TrimSpace(v))
				if err != nil {
					t.Fatalf("%s: end_time %q: %v", e.Name(), v, err)
				}
				if end.After(since) {
					out = append(out, storedBackup{id: e.Name(), end: end})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].end.Before(out[j].end) })
	return out
}

// s3Pod runs a Python script with boto3 (the PostgreSQL image's, which Barman uses) in the tenant's
// namespace, as s3, a client holding the tenant's own object-store keys from its namespace.
func s3Pod(t *testing.T, namespace, script string) string {
	t.Helper()
	endpoint := "https://10.250.0.1:9000"
	prelude := fmt.Sprintf(`import boto3, botocore
s3 = boto3.client("s3", endpoint_url=%q, verify="/ca/ca.crt", region_name="us-east-1")
`, endpoint)
	podName := "s3-" + randomValue(t)[:6]
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 26, runAsGroup: 26, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: s3
    image: %s
    imagePullPolicy: Never
    command: [python3, -c, %q]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    env:
    - {name: AWS_ACCESS_KEY_ID, valueFrom: {secretKeyRef: {name: backup-credentials, key: ACCESS_KEY_ID}}}
    - {name: AWS_SECRET_ACCESS_KEY, valueFrom: {secretKeyRef: {name: backup-credentials, key: ACCESS_SECRET_KEY}}}
    volumeMounts: [{name: ca, mountPath: /ca}]
  volumes: [{name: ca, secret: {secretName: backup-ca}}]
`, podName, namespace, pgImage, prelude+script)
	kubectl(t, manifest, "apply", "-f", "-")
	defer kubectl(t, "", "-n", namespace, "delete", "pod", podName, "--wait=false")
	testenv.Eventually(t, 2*time.Minute, func() error {
		out, err := kubectlErr("", "-n", namespace, "get", "pod", podName, "-o", "jsonpath={.status.phase}")
		if err != nil {
			return err
		}
		if out != "Succeeded" && out != "Failed" {
			return fmt.Errorf("pod %s is %s", podName, out)
		}
		return nil
	})
	return kubectl(t, "", "-n", namespace, "logs", podName)
}

// recordDR appends a measured recovery to bin/dr.tsv (kind, RTO seconds, rows lost), for the docs.
func recordDR(t *testing.T, kind string, rto time.Duration, rowsLost int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(testenv.RepoRoot(), "bin", "dr.tsv"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Log(err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%s\t%.0f\t%d\n", time.Now().UTC().Format(time.RFC3339), kind, rto.Seconds(), rowsLost)
}
