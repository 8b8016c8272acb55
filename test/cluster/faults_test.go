//go:build cluster

package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestDatabaseUnderFaults is the fault campaign's database part (docs/reliability.md), on the
// real cluster with CloudNativePG, its backup plugin and the object store: the database's primary
// killed; the object store gone while a Delete takes its final backup; the operator's pods killed
// while the final backup taken again runs. Throughout, no row is lost: the Tenant created again
// from the archive has every row written before the deletion.
func TestDatabaseUnderFaults(t *testing.T) {
	const name = "flt"
	objectStoreAccount(t, name)
	server := "pg-" + randomValue(t)[:6]
	// Scheduled once a year: the backups here are the ones the test asks for.
	const yearly = "0 0 0 1 1 *"
	applyTenant(t, name, backedUp(yearly, server))
	storeStopped := false
	t.Cleanup(func() {
		if storeStopped {
			clusterScript(t, "objectstore", "start")
		}
		if _, err := kubectlErr("", "get", "tenant", name); err == nil {
			kubectl(t, "", "annotate", "tenant", name, "tenancy.tenantctl.io/skip-final-backup=test cleanup", "--overwrite")
			deleteTenant(t, name)
		}
	})
	waitReady(t, name)
	waitArchiving(t, name, tenancyv1alpha1.WALArchivingWorking)
	write(t, name, 1, 100)

	t.Run("PrimaryKilledComesBackWithItsData", func(t *testing.T) {
		primary := currentPrimary(t, ns(name))
		killed := time.Now()
		kubectl(t, "", "-n", ns(name), "delete", "pod", primary, "--grace-period=0", "--force")
		// The application retries, as a real one would; the insert is idempotent so that a retry
		// after a commit whose answer was lost does not fail.
		out := sqlOnceAuthenticated(t, name, "insert into batches (id) select generate_series(101, 200) on conflict do nothing; select count(*) from batches")
		t.Logf("primary %s killed: the application wrote again %s later", primary, time.Since(killed).Round(time.Second))
		waitReady(t, name)
		t.Logf("the Tenant is Ready %s after the kill", time.Since(killed).Round(time.Second))
		if got := lastLine(out); got != "200" {
			t.Errorf("after the primary's restart the table holds %s rows, want 200", got)
		}
	})
	if t.Failed() {
		return
	}

	deletionStarted := time.Now()
	t.Run("ObjectStoreDownDuringTheFinalBackupKeepsTheDatabase", func(t *testing.T) {
		clusterScript(t, "objectstore", "stop")
		storeStopped = true
		kubectl(t, "", "delete", "tenant", name, "--wait=false")
		stalled := time.Now()
		waitCondition(t, name, tenancyv1alpha1.ConditionStalled, metav1.ConditionTrue, tenancyv1alpha1.ReasonFinalBackupFailed, 10*time.Minute)
		t.Logf("Stalled=True FinalBackupFailed %s after the deletion", time.Since(stalled).Round(time.Second))
		cluster := &cnpgv1.Cluster{}
		if err := get(cluster, ns(name), database.ClusterName); err != nil {
			t.Fatalf("the database is gone though its final backup failed: %v", err)
		}
		if !cluster.DeletionTimestamp.IsZero() {
			t.Fatal("the database is being deleted though its final backup failed")
		}
		pvcs := &corev1.PersistentVolumeClaimList{}
		if err := k8s.List(t.Context(), pvcs, client.InNamespace(ns(name))); err != nil || len(pvcs.Items) == 0 {
			t.Fatalf("the database's volume is gone (%d claims, %v)", len(pvcs.Items), err)
		}
		clusterScript(t, "objectstore", "start")
		storeStopped = false
	})
	if t.Failed() {
		return
	}

	t.Run("OperatorKilledDuringTheFinalBackupDeletesOnlyAfterIt", func(t *testing.T) {
		failed := &cnpgv1.Backup{}
		if err := get(failed, ns(name), database.FinalBackupName); err != nil {
			t.Fatal(err)
		}
		// What the Tenant's message says to do once the cause is fixed.
		kubectl(t, "", "-n", ns(name), "delete", "backup", database.FinalBackupName)
		testenv.Eventually(t, 2*time.Minute, func() error {
			b := &cnpgv1.Backup{}
			if err := get(b, ns(name), database.FinalBackupName); err != nil {
				return err
			}
			if b.UID == failed.UID {
				return fmt.Errorf("the failed final Backup is still there")
			}
			return nil
		})
		const operatorNS, operatorPods = "tenant-operator-system", "app.kubernetes.io/name=tenant-operator"
		killedPods := strings.Fields(kubectl(t, "", "-n", operatorNS, "get", "pod", "-l", operatorPods, "-o", "name"))
		killed := time.Now()
		kubectl(t, "", "-n", operatorNS, "delete", "pod", "-l", operatorPods, "--grace-period=0", "--force")
		t.Logf("the final backup taken again is running; every operator pod killed (%d)", len(killedPods))
		// A new pod leads, and says so in an Event (the chart's Role once refused it).
		testenv.Eventually(t, 2*time.Minute, func() error {
			events := &corev1.EventList{}
			if err := k8s.List(t.Context(), events, client.InNamespace(operatorNS)); err != nil {
				return err
			}
			for _, e := range events.Items {
				leader, _, _ := strings.Cut(e.Message, "_")
				if e.Reason == "LeaderElection" && strings.HasSuffix(e.Message, "became leader") &&
					!slices.Contains(killedPods, "pod/"+leader) && !e.LastTimestamp.Time.Before(killed.Truncate(time.Second)) {
					t.Logf("%s became leader %s after the kill", leader, e.LastTimestamp.Sub(killed).Round(time.Second))
					return nil
				}
			}
			return fmt.Errorf("no Event says that a new operator pod became leader (%d events in %s)", len(events.Items), operatorNS)
		})
		// Where the deletion's time goes: the backup itself, then the catalog (the ObjectStore's
		// recovery window) listing it, then the namespace. Observed, not asserted: once listed, the
		// objects go at once.
		var completed, listed time.Time
		testenv.Eventually(t, backups, func() error {
			b := &cnpgv1.Backup{}
			if err := get(b, ns(name), database.FinalBackupName); err != nil {
				return nil // already gone: listed and deleted
			}
			if b.Status.Phase != cnpgv1.BackupPhaseCompleted {
				return fmt.Errorf("the final backup is %q", b.Status.Phase)
			}
			completed = time.Now()
			return nil
		})
		testenv.Eventually(t, 10*time.Minute, func() error {
			store := &unstructured.Unstructured{}
			store.SetGroupVersionKind(schema.GroupVersionKind{Group: "barmancloud.cnpg.io", Version: "v1", Kind: "ObjectStore"})
			if err := get(store, ns(name), database.ObjectStoreName); err != nil {
				return nil
			}
			last, _, _ := unstructured.NestedString(store.Object, "status", "serverRecoveryWindow", server, "lastSuccessfulBackupTime")
			if at, err := time.Parse(time.RFC3339, last); err != nil || at.Before(deletionStarted.Truncate(time.Second)) {
				return fmt.Errorf("the catalog's last successful backup is %q, before the deletion", last)
			}
			listed = time.Now()
			return nil
		})
		if !completed.IsZero() && !listed.IsZero() {
			t.Logf("the final backup completed %s after the kill; the catalog listed it %s later",
				completed.Sub(killed).Round(time.Second), listed.Sub(completed).Round(time.Second))
		}
		if out, err := kubectlErr("", "wait", "--for=delete", "tenant/"+name, "--timeout=10m"); err != nil {
			conditions, _ := kubectlErr("", "get", "tenant", name, "-o", `jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}`)
			t.Fatalf("the Tenant was not deleted: %v\n%s\n%s", err, out, conditions)
		}
		t.Logf("deleted %s after the deletion began", time.Since(deletionStarted).Round(time.Second))
		if left := labelledFor(t, name); len(left) > 0 {
			t.Errorf("objects labelled for the deleted tenant remain: %v", left)
		}
		// One final backup, whole, in the object store: the failed one wrote nothing, and the
		// restarted operator took no second one.
		final := backupsInStore(t, name, server, deletionStarted)
		if len(final) != 1 {
			t.Fatalf("%d completed backups ended after the deletion began, want exactly the final one: %v", len(final), final)
		}
		t.Logf("final backup %s is in the object store (ended %s)", final[0].id, final[0].end.Format(time.RFC3339))
	})
	if t.Failed() {
		return
	}

	t.Run("RestoredFromTheArchiveNoRowIsLost", func(t *testing.T) {
		created := time.Now()
		applyTenant(t, name, restoredFrom(yearly, "pg-"+randomValue(t)[:6], server))
		waitReady(t, name)
		rows := lastLine(sqlOnceAuthenticated(t, name, "select count(*) from batches"))
		t.Logf("restored in %s: %s rows", time.Since(created).Round(time.Second), rows)
		if rows != "200" {
			t.Errorf("the Tenant restored from its archive holds %s rows, want the 200 written before the faults", rows)
		}
	})
}

// restoredFrom is backedUp, its database restored from the archive under from.
func restoredFrom(schedule, serverName, from string) string {
	return strings.Replace(backedUp(schedule, serverName), "    backup:", fmt.Sprintf("    restore: {serverName: %s}\n    backup:", from), 1)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
