//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// metricLine is one sample of the Prometheus text format.
var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+)$`)

// scrape reads the operator's metrics and sums the samples of name whose labels contain every
// fragment (for example `method="GET"`), grouped by the value of the label by ("" for one sum).
func scrape(t *testing.T, name, by string, fragments ...string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + stack.OperatorMetrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != name {
			continue
		}
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(m[2], f)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatal(err)
		}
		key := ""
		if by != "" {
			if i := strings.Index(m[2], by+`="`); i >= 0 {
				rest := m[2][i+len(by)+2:]
				key = rest[:strings.Index(rest, `"`)]
			}
		}
		out[key] += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiRequests are the requests the operator's Kubernetes clients sent, by HTTP method (client-go's
// own request metrics: every request through the transport, reads included, watches once each).
func apiRequests(t *testing.T) map[string]float64 {
	return scrape(t, "rest_client_requests_total", "method")
}

func writesOf(counts map[string]float64) float64 {
	return counts["POST"] + counts["PUT"] + counts["PATCH"] + counts["DELETE"]
}

// settled waits until the Tenant controller has finished at least n passes, has nothing queued, and
// the operator has sent no request for quiet: the tenants are in their steady state. (External
// Secrets Operator finishes its first syncs on its own schedule, and the operator answers them.)
func settled(t *testing.T, n int) {
	t.Helper()
	const quiet = 10 * time.Second
	var last map[string]float64
	var since time.Time
	testenv.Eventually(t, 3*time.Minute, func() error {
		done := scrape(t, "controller_runtime_reconcile_total", "", `controller="tenant"`)[""]
		depth := scrape(t, "workqueue_depth", "", `name="tenant"`)[""]
		if done < float64(n) || depth != 0 {
			return fmt.Errorf("%v tenant passes done (want %d), %v queued", done, n, depth)
		}
		now := apiRequests(t)
		if last == nil || !maps.Equal(now, last) {
			last, since = now, time.Now()
		}
		if quietFor := time.Since(since); quietFor < quiet {
			return fmt.Errorf("the operator's requests last changed %s ago (%v)", quietFor.Round(time.Second), now)
		}
		return nil
	})
}

// TestSteadyStateCostsNoRequests: once the tenants are provisioned, the operator sends no request
// to the apiserver while others keep writing status to the objects it made (CloudNativePG to the
// Clusters, stood in for here, every second; External Secrets Operator, the real one, to the
// ExternalSecrets and the PushSecret, on every refresh and every second by the test), and none but
// its informers' lists and watches after a restart over 50 tenants.
func TestSteadyStateCostsNoRequests(t *testing.T) {
	ctx := context.Background()
	const total, withDatabase = 50, 3
	var names, dbNames []string
	for i := 0; i < withDatabase; i++ {
		name := newTenantName(t, "steady-db")
		writeVaultSecret(t, "tenants/"+name+"/api", map[string]string{"token": randomValue(t)})
		applyTenant(t, name, secretsSpec("Retain")+"  database:\n    mode: Dedicated\n    instances: 1\n    storage: {size: 1Gi}\n")
		names, dbNames = append(names, name), append(dbNames, name)
	}
	for len(names) < total {
		name := newTenantName(t, "steady")
		applyTenant(t, name, "  owners:\n  - {kind: User, name: steady-owner}\n")
		names = append(names, name)
	}
	for _, name := range dbNames {
		testenv.Eventually(t, wait, func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: ns(name), Name: database.ClusterName}, &cnpgv1.Cluster{})
		})
		standInForCloudNativePG(t, ns(name), randomValue(t))
		markHealthy(t, name, "")
	}
	for _, name := range names {
		expectCondition(t, name, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	}

	// Foreign status writes, every second for 30 s.
	settled(t, total)
	before := requestsByVerb(t)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	statusWrites := 0
	for i := 0; i < 30; i++ {
		<-tick.C
		stamp := time.Now().UTC().Format(time.RFC3339Nano)
		var wg sync.WaitGroup
		for _, name := range dbNames {
			wg.Add(1)
			go func() {
				defer wg.Done()
				markHealthy(t, name, stamp)
				esoStatus(t, ns(name), schema.GroupVersionKind{Group: "external-secrets.io", Version: "v1", Kind: "ExternalSecret"}, stamp)
				esoStatus(t, ns(name), schema.GroupVersionKind{Group: "external-secrets.io", Version: "v1alpha1", Kind: "PushSecret"}, stamp)
			}()
		}
		wg.Wait()
		statusWrites += len(dbNames) * 3
	}
	settled(t, total)
	sent := delta(before, requestsByVerb(t))
	t.Logf("%d foreign status writes in 30 s; the operator sent %s requests", statusWrites, breakdown(sent, 1))
	for request, n := range sent {
		// Each informer renews its watch every 5 to 10 minutes, on a timer of client-go's and
		// whatever the writes: one renewal per resource may fall in the window.
		if strings.HasPrefix(request, "watch ") && n <= 1 {
			continue
		}
		t.Errorf("under foreign status writes the operator sent %v %s requests, want 0", n, request)
	}

	// A restart over the same tenants: the new process lists and watches, and writes nothing.
	if err := stack.RestartOperator(ctx); err != nil {
		t.Fatal(err)
	}
	settled(t, total)
	restarted := apiRequests(t)
	t.Logf("after a restart over %d tenants the operator sent %v", total, restarted)
	if w := writesOf(restarted); w != 0 {
		t.Errorf("after a restart the operator sent %v writes, want 0 (by method: %v)", w, restarted)
	}
	// Reads are its informers' lists and watches only, a number that does not grow with the tenants:
	// a read per tenant or per object would be at least one per tenant.
	if reads := restarted["GET"]; reads >= total {
		t.Errorf("after a restart the operator sent %v GET requests for %d tenants: it reads per object", reads, total)
	}
}

// markHealthy writes the Cluster's status as CloudNativePG would for a healthy one-instance
// cluster; stamp, when set, changes a field the operator does not mirror.
func markHealthy(t *testing.T, tenant, stamp string) {
	t.Helper()
	ctx := context.Background()
	c := &cnpgv1.Cluster{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns(tenant), Name: database.ClusterName}, c); err != nil {
		t.Error(err)
		return
	}
	c.Status.Phase = cnpgv1.PhaseHealthy
	c.Status.Instances = c.Spec.Instances
	c.Status.ReadyInstances = c.Spec.Instances
	c.Status.CurrentPrimaryTimestamp = stamp
	if err := k8s.Status().Update(ctx, c); err != nil {
		t.Error(err)
	}
}

// esoStatus writes status.refreshTime on every object of the kind in the namespace, as External
// Secrets Operator does on each refresh.
func esoStatus(t *testing.T, namespace string, gvk schema.GroupVersionKind, stamp string) {
	t.Helper()
	ctx := context.Background()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := k8s.List(ctx, list, client.InNamespace(namespace)); err != nil {
		t.Error(err)
		return
	}
	for i := range list.Items {
		obj := &list.Items[i]
		if err := unstructured.SetNestedField(obj.Object, stamp, "status", "refreshTime"); err != nil {
			t.Error(err)
			continue
		}
		// A conflict with the real ESO writing at the same moment is not a failure of the operator.
		if err := k8s.Status().Update(ctx, obj); err != nil && !strings.Contains(err.Error(), "the object has been modified") {
			t.Error(err)
		}
	}
}
