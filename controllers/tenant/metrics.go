package tenant

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
)

var reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tenant_operator_reconcile_errors_total",
	Help: "Failed Tenant reconcile phases, by phase (namespace, isolation, access, prune, deletion).",
}, []string{"phase"})

var tenantsDesc = prometheus.NewDesc("tenant_operator_tenants",
	"Tenants by the status of their Ready condition (True, False, Unknown) and phase.",
	[]string{"ready", "phase"}, nil)

var (
	backupAgeDesc = prometheus.NewDesc("tenant_operator_database_backup_age_seconds",
		"Seconds since the tenant's last successful database backup (since the tenant was created while it has none yet), for each tenant with backups.",
		[]string{"tenant"}, nil)
	backupIntervalDesc = prometheus.NewDesc("tenant_operator_database_backup_interval_seconds",
		"Seconds between two of the tenant's scheduled backups, for each tenant with backups: alert when the age passes twice this.",
		[]string{"tenant"}, nil)
	archivingFailingDesc = prometheus.NewDesc("tenant_operator_database_wal_archiving_failing",
		"1 while the tenant's WAL archiving to the object store fails (writes since the last archived segment cannot be recovered), else 0.",
		[]string{"tenant"}, nil)
)

// cronParser reads schedules as CloudNativePG does: six fields, seconds first, or a descriptor.
var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// backupInterval is the time between two runs of a schedule, from now.
func backupInterval(schedule string, now time.Time) (time.Duration, bool) {
	s, err := cronParser.Parse(schedule)
	if err != nil {
		return 0, false
	}
	next := s.Next(now)
	return s.Next(next).Sub(next), true
}

// readiness counts Tenants by readiness at scrape time, from the informer cache: always current,
// and no bookkeeping in the reconciler.
type readiness struct{ reader client.Reader }

func (readiness) Describe(ch chan<- *prometheus.Desc) {
	ch <- tenantsDesc
	ch <- backupAgeDesc
	ch <- backupIntervalDesc
	ch <- archivingFailingDesc
}

func (c readiness) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &tenancyv1alpha1.TenantList{}
	// Read only: the cache's own objects, not a deep copy of every Tenant on every scrape (at
	// 10,000 tenants the copies were most of the operator's CPU between reconciles).
	if err := c.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(tenantsDesc, err)
		return
	}
	type key struct{ ready, phase string }
	counts := map[key]int{}
	for _, t := range list.Items {
		ready := string(metav1.ConditionUnknown)
		if c := meta.FindStatusCondition(t.Status.Conditions, tenancyv1alpha1.ConditionReady); c != nil {
			ready = string(c.Status)
		}
		counts[key{ready, string(t.Status.Phase)}]++
		backupMetrics(ch, &t, time.Now())
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(tenantsDesc, prometheus.GaugeValue, float64(n), k.ready, k.phase)
	}
}

// backupMetrics are a tenant's backup figures, for an alert on a backup older than twice its
// schedule and on failing archiving. Computed at scrape time from the Tenant's status.
func backupMetrics(ch chan<- prometheus.Metric, t *tenancyv1alpha1.Tenant, now time.Time) {
	db := t.Spec.Database
	if db == nil || db.Backup == nil || t.Status.Database == nil || !t.DeletionTimestamp.IsZero() {
		return
	}
	since := t.CreationTimestamp.Time
	if last := t.Status.Database.LastSuccessfulBackup; last != nil {
		since = last.Time
	}
	ch <- prometheus.MustNewConstMetric(backupAgeDesc, prometheus.GaugeValue, now.Sub(since).Seconds(), t.Name)
	if every, ok := backupInterval(db.Backup.Schedule, now); ok {
		ch <- prometheus.MustNewConstMetric(backupIntervalDesc, prometheus.GaugeValue, every.Seconds(), t.Name)
	}
	failing := 0.0
	if t.Status.Database.WALArchiving == tenancyv1alpha1.WALArchivingFailing {
		failing = 1
	}
	ch <- prometheus.MustNewConstMetric(archivingFailingDesc, prometheus.GaugeValue, failing, t.Name)
}

// RegisterMetrics registers the Tenant metrics with the manager's registry.
func RegisterMetrics(reader client.Reader) error {
	return reconcileutil.RegisterMetrics(reconcileErrors, readiness{reader: reader})
}
