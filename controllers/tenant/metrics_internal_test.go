package tenant

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
)

// The backup metrics are what the chart's alerts read: the age of the last backup (since creation
// while there is none), the schedule's interval, and whether archiving fails.
func TestBackupMetrics(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tenant := func(schedule string, st *tenancyv1alpha1.DatabaseStatus) *tenancyv1alpha1.Tenant {
		tnt := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", CreationTimestamp: metav1.NewTime(now.Add(-3 * time.Hour))},
			Spec:   tenancyv1alpha1.TenantSpec{Database: &tenancyv1alpha1.DatabaseSpec{}},
			Status: tenancyv1alpha1.TenantStatus{Database: st}}
		if schedule != "" {
			tnt.Spec.Database.Backup = &tenancyv1alpha1.BackupSpec{Schedule: schedule}
		}
		return tnt
	}
	lastBackup := metav1.NewTime(now.Add(-26 * time.Hour))
	ages := collectByName(t, tenant("0 0 2 * * *", &tenancyv1alpha1.DatabaseStatus{LastSuccessfulBackup: &lastBackup, WALArchiving: tenancyv1alpha1.WALArchivingFailing}), now)
	if len(ages) != 3 || ages["tenant_operator_database_backup_age_seconds"] != (26*time.Hour).Seconds() ||
		ages["tenant_operator_database_backup_interval_seconds"] != (24*time.Hour).Seconds() ||
		ages["tenant_operator_database_wal_archiving_failing"] != 1 {
		t.Errorf("metrics %v; want an age of 26h, an interval of 24h and archiving failing", ages)
	}
	noneYet := collectByName(t, tenant("@hourly", &tenancyv1alpha1.DatabaseStatus{WALArchiving: tenancyv1alpha1.WALArchivingWorking}), now)
	if noneYet["tenant_operator_database_backup_age_seconds"] != (3*time.Hour).Seconds() ||
		noneYet["tenant_operator_database_backup_interval_seconds"] != time.Hour.Seconds() ||
		noneYet["tenant_operator_database_wal_archiving_failing"] != 0 {
		t.Errorf("metrics %v; want the age since creation (3h), an interval of 1h and archiving working", noneYet)
	}
	if got := collectByName(t, tenant("", &tenancyv1alpha1.DatabaseStatus{}), now); len(got) != 0 {
		t.Errorf("a tenant without backups has backup metrics: %v", got)
	}
}

func collectByName(t *testing.T, tnt *tenancyv1alpha1.Tenant, now time.Time) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 10)
	backupMetrics(ch, tnt, now)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"tenant_operator_database_backup_age_seconds", "tenant_operator_database_backup_interval_seconds", "tenant_operator_database_wal_archiving_failing"} {
			if m.Desc() == descByName[name] {
				out[name] = d.GetGauge().GetValue()
			}
		}
	}
	return out
}

var descByName = map[string]*prometheus.Desc{
	"tenant_operator_database_backup_age_seconds":      backupAgeDesc,
	"tenant_operator_database_backup_interval_seconds": backupIntervalDesc,
	"tenant_operator_database_wal_archiving_failing":   archivingFailingDesc,
}
