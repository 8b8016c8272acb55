package tenant

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// readiness counts Tenants by readiness at scrape time, from the informer cache: always current,
// and no bookkeeping in the reconciler.
type readiness struct{ reader client.Reader }

func (readiness) Describe(ch chan<- *prometheus.Desc) { ch <- tenantsDesc }

func (c readiness) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &tenancyv1alpha1.TenantList{}
	if err := c.reader.List(ctx, list); err != nil {
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
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(tenantsDesc, prometheus.GaugeValue, float64(n), k.ready, k.phase)
	}
}

// RegisterMetrics registers the Tenant metrics with the manager's registry.
func RegisterMetrics(reader client.Reader) error {
	return reconcileutil.RegisterMetrics(reconcileErrors, readiness{reader: reader})
}
