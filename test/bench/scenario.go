package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers/tenant"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// floorLabel replaces the tenant label on the floor's objects: they are the builders' objects, but
// no Tenant's, so the operator neither caches nor reconciles them.
const floorLabel = "bench.tenantctl.io/floor"

// probeTenants is how many Tenants (at most N) measure create-to-Ready latency after the N.
const probeTenants = 200

// scenario measures n tenants of one shape.
func (b *bench) scenario(ctx context.Context, shape string, n int, policy tenancyv1alpha1.DeletionPolicy) (Scenario, error) {
	s := Scenario{Shape: shape, N: n, DeletionPolicy: string(policy)}
	prefix := fmt.Sprintf("%s-%d", shape[:3], n)
	name := func(i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }
	probe := func(i int) string { return fmt.Sprintf("%s-p%04d", prefix, i) }
	c := b.o.concurrency

	// The raw floor, first: the same objects with a plain client.
	progress("%s N=%d: the raw floor (%d writers)", shape, n, b.o.workers)
	if err := b.floor(ctx, &s, shape, n, policy); err != nil {
		return s, fmt.Errorf("floor: %w", err)
	}
	progress("%s N=%d: floor %.1f tenants/s (%d objects each)", shape, n, s.FloorThroughput, s.FloorObjects)

	probes := min(n, probeTenants)
	if shape == "secrets" {
		progress("%s N=%d: writing each tenant's secret to Vault", shape, n)
		if err := parallel(ctx, n+probes, c, func(i int) error {
			if i < n {
				return b.vaultSecret(ctx, name(i))
			}
			return b.vaultSecret(ctx, probe(i-n))
		}); err != nil {
			return s, err
		}
	}
	if _, err := b.settled(ctx, b.tenantCount(), 5*time.Minute); err != nil {
		return s, err
	}
	var err error
	if s.HeapBytesBefore, _, err = b.heap(); err != nil {
		return s, err
	}

	// The operator: apply every Tenant, wait for each to be Ready.
	progress("%s N=%d: applying %d Tenants, %d at a time", shape, n, n, c)
	before, err := scrape(b.stack.OperatorMetrics)
	if err != nil {
		return s, err
	}
	start := time.Now()
	sampler := b.sampleQueue(ctx)
	profiled := make(chan string, 1)
	if n >= 1000 {
		go func() {
			file := filepath.Join(b.o.profiles, fmt.Sprintf("%s-%d.cpu.pprof", shape, n))
			if err := saveProfile(b.pprofAddr, "profile?seconds=30", file); err != nil {
				progress("CPU profile: %v", err)
				file = ""
			}
			profiled <- file
		}()
	} else {
		profiled <- ""
	}
	// Throughput: the N Tenants applied as a GitOps tool syncs them, C applies at a time and
	// without waiting for each to be Ready (open loop).
	created := make([]time.Time, n)
	if err := parallel(ctx, n, c, func(i int) error {
		created[i] = time.Now()
		return b.admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(tenantObject(shape, name(i), policy)),
			client.FieldOwner(gitopsManager), client.ForceOwnership)
	}); err != nil {
		return s, fmt.Errorf("apply: %w", err)
	}
	if err := waitFor(ctx, 10*time.Minute+time.Duration(n)*200*time.Millisecond, "every Tenant Ready", func() (bool, string, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		done := 0
		for i := range n {
			if _, ok := b.ready[name(i)]; ok {
				done++
			}
		}
		return done == n, fmt.Sprintf("%d of %d Ready", done, n), nil
	}); err != nil {
		return s, err
	}
	var burst []float64
	var last time.Time
	b.mu.Lock()
	for i := range n {
		r := b.ready[name(i)]
		burst = append(burst, r.Sub(created[i]).Seconds())
		if r.After(last) {
			last = r
		}
	}
	b.mu.Unlock()
	s.MaxQueueDepth = sampler()
	s.CPUProfile = <-profiled
	s.Seconds = last.Sub(start).Seconds()
	s.Throughput = float64(n) / s.Seconds
	s.Ratio = s.Throughput / s.FloorThroughput
	sort.Float64s(burst)
	s.BurstLatencyP50, s.BurstLatencyP99 = percentile(burst, 0.50), percentile(burst, 0.99)
	progress("%s N=%d: Ready in %.1f s (%.1f tenants/s, %.2fx the floor); in the burst, p50 %.1f s and p99 %.1f s from apply to Ready", shape, n, s.Seconds, s.Throughput, s.Ratio, s.BurstLatencyP50, s.BurstLatencyP99)

	settledAt, err := b.settled(ctx, b.tenantCount(), 10*time.Minute, start)
	if err != nil {
		return s, err
	}
	after, err := scrape(b.stack.OperatorMetrics)
	if err != nil {
		return s, err
	}
	events, err := b.audit.between(start, settledAt.Add(time.Second))
	if err != nil {
		return s, err
	}
	s.ServerRequestsPerTenant = map[string]float64{}
	for verb, k := range countVerbs(events) {
		s.ServerRequestsPerTenant[verb] = float64(k) / float64(n)
		s.RequestsPerTenant += float64(k) / float64(n)
		if isWrite(verb) {
			s.WritesPerTenant += float64(k) / float64(n)
		}
	}
	s.ClientRequestsPerTenant = map[string]float64{}
	bm, am := before.sum("rest_client_requests_total", "method"), after.sum("rest_client_requests_total", "method")
	for method, v := range am {
		if d := v - bm[method]; d > 0 {
			s.ClientRequestsPerTenant[method] = d / float64(n)
		}
	}
	s.ReconcileSecondsP99 = histogramQuantile(before, after, "controller_runtime_reconcile_time_seconds", 0.99, `controller="tenant"`)
	progress("%s N=%d: %.1f requests and %.1f writes per tenant (%v)", shape, n, s.RequestsPerTenant, s.WritesPerTenant, byVerbResource(events))

	// Latency: with the N in place, more Tenants applied by C appliers that each wait for theirs to
	// be Ready before the next, as a GitOps tool that waits for health does (Flux's wait, Argo
	// CD's health checks): at most C tenants in flight (closed loop).
	progress("%s N=%d: latency of %d more Tenants, at most %d in flight", shape, n, probes, c)
	latencies := make([]float64, probes)
	if err := parallel(ctx, probes, c, func(i int) error {
		ready := b.waitReady(probe(i))
		from := time.Now()
		if err := b.admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(tenantObject(shape, probe(i), policy)),
			client.FieldOwner(gitopsManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		select {
		case <-ready:
			latencies[i] = time.Since(from).Seconds()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Minute):
			return fmt.Errorf("tenant %s not Ready 5 minutes after its apply", probe(i))
		}
	}); err != nil {
		return s, err
	}
	sort.Float64s(latencies)
	s.LatencyTenants = probes
	s.LatencyP50, s.LatencyP95, s.LatencyP99 = percentile(latencies, 0.50), percentile(latencies, 0.95), percentile(latencies, 0.99)
	s.LatencyMax = latencies[len(latencies)-1]
	progress("%s N=%d: create-to-Ready p50 %.2f s, p95 %.2f s, p99 %.2f s", shape, n, s.LatencyP50, s.LatencyP95, s.LatencyP99)
	if _, err := b.settled(ctx, b.tenantCount(), 10*time.Minute); err != nil {
		return s, err
	}

	// Idle.
	window := b.o.idle
	if n < b.o.smallBelow && b.o.idleSmall != "" {
		window = b.o.idleSmall
	}
	idle, err := time.ParseDuration(window)
	if err != nil {
		return s, err
	}
	progress("%s N=%d: idle for %s", shape, n, idle)
	idleFrom := time.Now()
	select {
	case <-ctx.Done():
		return s, ctx.Err()
	case <-time.After(idle):
	}
	idleEvents, err := b.audit.between(idleFrom, time.Now())
	if err != nil {
		return s, err
	}
	s.IdleSeconds = idle.Seconds()
	s.IdleRequests = byVerbResource(idleEvents)

	// Memory at N.
	if s.HeapBytes, s.RSSBytes, err = b.heap(); err != nil {
		return s, err
	}
	s.HeapBytesPerTenant = (float64(s.HeapBytes) - float64(s.HeapBytesBefore)) / float64(n+probes)
	heapFile := filepath.Join(b.o.profiles, fmt.Sprintf("%s-%d.heap.pprof", shape, n))
	if err := saveProfile(b.pprofAddr, "heap", heapFile); err == nil {
		s.HeapProfile = heapFile
	}
	progress("%s N=%d: idle requests %v; heap %.1f KiB per tenant, RSS %d MiB", shape, n, s.IdleRequests, s.HeapBytesPerTenant/1024, s.RSSBytes>>20)

	// A restart over all tenants.
	progress("%s N=%d: restarting the operator", shape, n)
	restartFrom := time.Now()
	if err := b.stack.RestartOperator(ctx); err != nil {
		return s, err
	}
	restartSettled, err := b.settled(ctx, b.tenantCount(), 10*time.Minute, restartFrom)
	if err != nil {
		return s, err
	}
	s.RestartSeconds = restartSettled.Sub(restartFrom).Seconds()
	restartEvents, err := b.audit.between(restartFrom, restartSettled.Add(time.Second))
	if err != nil {
		return s, err
	}
	s.RestartRequests = byVerbResource(restartEvents)
	for _, e := range restartEvents {
		// Discovery (a get of no resource) is not an object read; the Event leader election writes
		// in the operator's own namespace when a process becomes leader is once per process, not a
		// write about tenants: both are still listed in RestartRequests.
		if e.Verb == "get" && e.Resource != "" {
			s.RestartObjectReads++
		}
		if isWrite(e.Verb) && !(e.Resource == "events" && e.Namespace == testenv.OperatorNamespace) {
			s.RestartWrites++
		}
	}
	progress("%s N=%d: after a restart: %d writes, %d object reads (%v)", shape, n, s.RestartWrites, s.RestartObjectReads, s.RestartRequests)

	// Deletion.
	if b.o.deleteAtMost > 0 && n > b.o.deleteAtMost {
		progress("%s N=%d: deletion not measured (-delete-at-most %d)", shape, n, b.o.deleteAtMost)
		return s, nil
	}
	progress("%s N=%d: deleting every Tenant (%s)", shape, n, policy)
	delFrom := time.Now()
	all := func(i int) string {
		if i < n {
			return name(i)
		}
		return probe(i - n)
	}
	if err := parallel(ctx, n+probes, c, func(i int) error {
		t := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: all(i)}}
		return client.IgnoreNotFound(b.admin.Delete(ctx, t))
	}); err != nil {
		return s, fmt.Errorf("delete: %w", err)
	}
	if err := waitFor(ctx, 30*time.Minute, "every Tenant gone", func() (bool, string, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		left := 0
		for i := range n + probes {
			if b.exists[all(i)] {
				left++
			}
		}
		return left == 0, fmt.Sprintf("%d of %d left", left, n+probes), nil
	}); err != nil {
		return s, err
	}
	s.DeleteSeconds = time.Since(delFrom).Seconds()
	progress("%s N=%d: deleted in %.1f s", shape, n, s.DeleteSeconds)
	return s, nil
}

// floor creates, for n tenants of the shape, exactly the objects the builders produce, with the
// operator's number of writers and identity, one server-side apply each, and no controller. The Tenants'
// defaults come from a dry run first, outside the timing.
func (b *bench) floor(ctx context.Context, s *Scenario, shape string, n int, policy tenancyv1alpha1.DeletionPolicy) error {
	objs := make([][]*unstructured.Unstructured, n)
	err := parallel(ctx, n, b.o.concurrency, func(i int) error {
		u := tenantObject(shape, fmt.Sprintf("floor-%s-%d-%05d", shape[:3], n, i), policy)
		if err := b.admin.Patch(ctx, u, client.Apply, client.FieldOwner(gitopsManager), client.DryRunAll); err != nil { //nolint:staticcheck // SA1019: a server-side apply of a whole object, as kubectl and GitOps tools send it; client.Client.Apply takes apply configurations
			return fmt.Errorf("dry-run the Tenant: %w", err)
		}
		t := &tenancyv1alpha1.Tenant{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
			return err
		}
		for _, obj := range tenant.Desired(t, b.cfg) {
			r, err := b.floorObject(obj)
			if err != nil {
				return err
			}
			objs[i] = append(objs[i], r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.FloorObjects = len(objs[0])
	start := time.Now()
	if err := parallel(ctx, n, b.o.workers, func(i int) error {
		for _, u := range objs[i] {
			if err := b.operator.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("bench-floor"), client.ForceOwnership); err != nil {
				return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	s.FloorSeconds = time.Since(start).Seconds()
	s.FloorThroughput = float64(n) / s.FloorSeconds
	return b.removeFloorRBAC(ctx)
}

// removeFloorRBAC deletes the floor's cluster roles and bindings once it is measured. The apiserver
// authorizes every request, and checks every role or binding written for escalation, by walking
// every ClusterRoleBinding in the cluster: left in place, the floor's would make the operator's run
// that follows pay for twice as many as the floor did (at 10,000 tenants that walk was 60% of the
// apiserver's CPU). Its namespaced objects stay: they cost the authorizer nothing outside their
// namespace, and deleting 10,000 namespaces would take the namespace controller an hour.
func (b *bench) removeFloorRBAC(ctx context.Context) error {
	for _, list := range []client.ObjectList{&rbacv1.ClusterRoleBindingList{}, &rbacv1.ClusterRoleList{}} {
		if err := b.admin.List(ctx, list, client.HasLabels{floorLabel}); err != nil {
			return err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		if err := parallel(ctx, len(items), b.o.concurrency, func(i int) error {
			return client.IgnoreNotFound(b.admin.Delete(ctx, items[i].(client.Object)))
		}); err != nil {
			return err
		}
	}
	return nil
}

// floorObject is the builders' object as an apply request, with the tenant's label and owner
// references taken off.
func (b *bench) floorObject(obj client.Object) (*unstructured.Unstructured, error) {
	gvk, err := b.admin.GroupVersionKindFor(obj)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	labels := u.GetLabels()
	delete(labels, tenancyv1alpha1.LabelTenant)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[floorLabel] = "true"
	u.SetLabels(labels)
	u.SetOwnerReferences(nil)
	return u, nil
}

// vaultSecret writes the value the secrets shape's ExternalSecret reads.
func (b *bench) vaultSecret(ctx context.Context, name string) error {
	value := make([]byte, 16)
	_, _ = rand.Read(value)
	body, _ := json.Marshal(map[string]any{"data": map[string]string{"token": hex.EncodeToString(value)}})
	code, out, err := b.stack.Vault.Do(ctx, http.MethodPost, "secret/data/tenants/"+name+"/api", string(body))
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("write the Vault secret of %s: %d %s", name, code, out)
	}
	return nil
}

// sampleQueue samples the Tenant controller's queue depth every second until the returned function
// is called, which returns the largest depth seen.
func (b *bench) sampleQueue(ctx context.Context) func() float64 {
	stop := make(chan struct{})
	result := make(chan float64)
	go func() {
		depth := 0.0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				result <- depth
				return
			case <-ctx.Done():
				result <- depth
				return
			case <-tick.C:
				if m, err := scrape(b.stack.OperatorMetrics); err == nil {
					depth = max(depth, m.sum("workqueue_depth", "", `name="tenant"`)[""])
				}
			}
		}
	}()
	return func() float64 { close(stop); return <-result }
}

// unrelated fills the cluster with namespaces, Secrets and ConfigMaps the operator does not own,
// and measures its heap before and after: its caches hold only what carries the tenant label.
func (b *bench) unrelated(ctx context.Context, n int) (*Unrelated, error) {
	u := &Unrelated{Namespaces: n, Secrets: n, ConfigMaps: n}
	if _, err := b.settled(ctx, 0, 5*time.Minute); err != nil {
		return nil, err
	}
	var err error
	if u.HeapBefore, u.RSSBefore, err = b.heap(); err != nil {
		return nil, err
	}
	progress("unrelated: creating %d namespaces, each with a 4 KiB Secret and a ConfigMap", n)
	payload := make([]byte, 3072)
	_, _ = rand.Read(payload)
	if err := parallel(ctx, n, b.o.concurrency, func(i int) error {
		name := fmt.Sprintf("unrelated-%05d", i)
		objs := []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": "unrelated"}}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "data"}, Data: map[string][]byte{"payload": payload}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "settings"}, Data: map[string]string{"payload": hex.EncodeToString(payload[:512])}},
		}
		for _, o := range objs {
			if err := b.admin.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if _, err := b.settled(ctx, 0, 5*time.Minute); err != nil {
		return nil, err
	}
	if u.HeapAfter, u.RSSAfter, err = b.heap(); err != nil {
		return nil, err
	}
	progress("unrelated: heap %d KiB before, %d KiB after", u.HeapBefore>>10, u.HeapAfter>>10)
	return u, nil
}
