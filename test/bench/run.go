package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const (
	gitopsManager = "bench-gitops"
	// quiet is how long the operator must have sent nothing for it to count as settled.
	quiet = 10 * time.Second
)

type bench struct {
	o     options
	stack *testenv.Stack
	admin client.Client
	// operator is a plain client with the operator's identity (the generated manager role), for the
	// floor: the apiserver authorizes and checks for escalation the same way for both.
	operator  client.Client
	cfg       config.Config
	audit     *auditLog
	pprofAddr string

	mu      sync.Mutex
	created map[string]time.Time // when each Tenant's apply was sent
	ready   map[string]time.Time // when each was first seen Ready
	exists  map[string]bool
	waiters map[string]chan struct{} // closed when the Tenant is first seen Ready
}

// waitReady returns a channel closed once the Tenant is seen Ready.
func (b *bench) waitReady(name string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan struct{})
	if _, done := b.ready[name]; done {
		close(ch)
		return ch
	}
	b.waiters[name] = ch
	return ch
}

func run(ctx context.Context, o options) (reterr error) {
	root := testenv.RepoRoot()
	if err := os.Chdir(root); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tenant-operator-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if reterr != nil || o.keep {
			fmt.Fprintf(os.Stderr, "bench: the run's logs are kept in %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	manager := filepath.Join(dir, "manager")
	progress("building the operator from main.go")
	if out, err := exec.Command("go", "build", "-o", manager, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("build the operator: %v: %s", err, out)
	}
	b := &bench{o: o, created: map[string]time.Time{}, ready: map[string]time.Time{}, exists: map[string]bool{}, waiters: map[string]chan struct{}{}}
	b.audit = &auditLog{path: filepath.Join(dir, "audit.log")}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, fmt.Appendf(nil, auditPolicy, testenv.OperatorUsername), 0o600); err != nil {
		return err
	}
	if b.pprofAddr, err = testenv.FreeAddr(); err != nil {
		return err
	}
	operatorConfig := filepath.Join(root, "config", "dev", "operator-config.yaml")
	progress("starting kube-apiserver, etcd, kube-controller-manager, Vault, External Secrets Operator and the operator")
	b.stack, err = testenv.StartStack(ctx, testenv.StackOptions{
		Dir: dir, Manager: manager, OperatorConfig: operatorConfig, ControllerManager: true,
		ConfigureControlPlane: func(env *envtest.Environment) {
			args := env.ControlPlane.GetAPIServer().Configure()
			args.Set("audit-policy-file", policy)
			args.Set("audit-log-path", b.audit.path)
			// Never rotated (the default rotates at 100 MB, which 10,000 tenants pass): the
			// tailer reads one file from its last offset.
			args.Set("audit-log-maxsize", "1000000")
		},
		// The chart's flags (charts/tenant-operator/templates/deployment.yaml), plus the profiles.
		OperatorArgs: []string{"--leader-elect", "--leader-election-namespace=" + testenv.OperatorNamespace,
			fmt.Sprintf("--concurrency=%d", o.workers), "--zap-log-level=info", "--pprof-bind-address=" + b.pprofAddr},
	})
	if err != nil {
		return err
	}
	defer b.stack.Stop()
	// The configuration the operator runs with: the file, plus the stack's Vault.
	if b.cfg, err = config.Load(filepath.Join(dir, "operator-config.yaml")); err != nil {
		return err
	}
	if b.admin, err = client.New(b.stack.Env.Config, client.Options{Scheme: controllers.NewScheme()}); err != nil {
		return err
	}
	operatorREST, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "operator.kubeconfig"))
	if err != nil {
		return err
	}
	operatorREST.QPS = -1 // as ctrl.GetConfig gives the operator: no client-side rate limit
	if b.operator, err = client.New(operatorREST, client.Options{Scheme: controllers.NewScheme()}); err != nil {
		return err
	}
	if err := b.watch(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(o.profiles, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}

	r := &Results{Started: time.Now().UTC(), Command: command(), Machine: machine(), Concurrency: o.concurrency, Workers: o.workers}
	if o.unrelated > 0 {
		if r.Unrelated, err = b.unrelated(ctx, o.unrelated); err != nil {
			return fmt.Errorf("unrelated objects: %w", err)
		}
	}
	type plan struct {
		shape  string
		n      int
		policy tenancyv1alpha1.DeletionPolicy
	}
	var plans []plan
	largest := 0
	for _, n := range o.minimal {
		largest = max(largest, n)
	}
	// Smaller runs first; the minimal shape's largest last. Deletion is measured under Delete (the
	// namespace controller empties each namespace) below -delete-below tenants, and under Retain
	// above it (the namespace controller alone would take about an hour for 10,000) and for the
	// database shape, whose data a Delete would need a backup or a confirmation for.
	policyFor := func(n int) tenancyv1alpha1.DeletionPolicy {
		if n < o.deleteBelow {
			return tenancyv1alpha1.DeletionPolicyDelete
		}
		return tenancyv1alpha1.DeletionPolicyRetain
	}
	for _, n := range o.minimal {
		if n != largest {
			plans = append(plans, plan{"minimal", n, policyFor(n)})
		}
	}
	for _, n := range o.secrets {
		plans = append(plans, plan{"secrets", n, policyFor(n)})
	}
	for _, n := range o.database {
		plans = append(plans, plan{"database", n, tenancyv1alpha1.DeletionPolicyRetain})
	}
	if largest > 0 {
		plans = append(plans, plan{"minimal", largest, policyFor(largest)})
	}
	for _, p := range plans {
		s, err := b.scenario(ctx, p.shape, p.n, p.policy)
		if err != nil {
			return fmt.Errorf("%s tenants, N=%d: %w", p.shape, p.n, err)
		}
		s.Commit = r.Machine.Commit
		r.Scenarios = append(r.Scenarios, s)
		if err := writeResults(r, filepath.Join(o.out, "results.json")); err != nil {
			return err
		}
	}
	return render(r, o.out, o.doc)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func writeResults(r *Results, path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func command() string {
	return strings.Join(append([]string{"go", "run", "./test/bench"}, os.Args[1:]...), " ")
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Kubernetes: os.Getenv("KUBE_VERSION"), Etcd: os.Getenv("ETCD_VERSION")}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = (kb + 512*1024) / (1024 * 1024)
		}
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// watch records, for every Tenant, when it was first seen Ready and when it was gone; and stands
// in for CloudNativePG (see standIn).
func (b *bench) watch(ctx context.Context) error {
	c, err := cache.New(b.stack.Env.Config, cache.Options{Scheme: b.admin.Scheme()})
	if err != nil {
		return err
	}
	inf, err := c.GetInformer(ctx, &tenancyv1alpha1.Tenant{})
	if err != nil {
		return err
	}
	seen := func(obj any) {
		t, ok := obj.(*tenancyv1alpha1.Tenant)
		if !ok {
			return
		}
		now := time.Now()
		b.mu.Lock()
		defer b.mu.Unlock()
		b.exists[t.Name] = true
		if _, done := b.ready[t.Name]; !done && meta.IsStatusConditionTrue(t.Status.Conditions, tenancyv1alpha1.ConditionReady) {
			b.ready[t.Name] = now
			if ch, ok := b.waiters[t.Name]; ok {
				close(ch)
				delete(b.waiters, t.Name)
			}
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, obj any) { seen(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if t, ok := obj.(*tenancyv1alpha1.Tenant); ok {
				b.mu.Lock()
				delete(b.exists, t.Name)
				b.mu.Unlock()
			}
		},
	}); err != nil {
		return err
	}
	clusters, err := c.GetInformer(ctx, &cnpgv1.Cluster{})
	if err != nil {
		return err
	}
	queue := make(chan client.ObjectKey, 100000)
	if _, err := clusters.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if cl, ok := obj.(*cnpgv1.Cluster); ok && cl.Labels[tenancyv1alpha1.LabelTenant] != "" && cl.Status.Phase != cnpgv1.PhaseHealthy {
			queue <- client.ObjectKeyFromObject(cl)
		}
	}}); err != nil {
		return err
	}
	for range b.o.concurrency {
		go func() {
			for key := range queue {
				if err := b.standIn(ctx, key); err != nil && ctx.Err() == nil {
					progress("CloudNativePG stand-in: %s: %v", key, err)
				}
			}
		}()
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return errors.New("the benchmark's Tenant cache did not sync")
	}
	return nil
}

// standIn does what CloudNativePG does for a new one-instance Cluster once its primary is up: it
// writes the app user's Secret and reports the Cluster healthy. (No PostgreSQL runs on this control
// plane; the real cluster suite, make test-cluster, runs the real CloudNativePG.)
func (b *bench) standIn(ctx context.Context, key client.ObjectKey) error {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: database.AppSecretName},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "app", "password": "bench-" + key.Namespace, "dbname": "app",
			"host": database.ClusterName + "-rw", "port": "5432"},
	}
	if err := b.admin.Create(ctx, s); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cl := &cnpgv1.Cluster{}
		if err := b.admin.Get(ctx, key, cl); err != nil {
			return client.IgnoreNotFound(err)
		}
		cl.Status.Phase = cnpgv1.PhaseHealthy
		cl.Status.Instances = cl.Spec.Instances
		cl.Status.ReadyInstances = cl.Spec.Instances
		return b.admin.Status().Update(ctx, cl)
	})
}

// tenant is the Tenant a GitOps repository would hold for the shape.
func tenantObject(shape, name string, policy tenancyv1alpha1.DeletionPolicy) *unstructured.Unstructured {
	spec := map[string]any{
		"deletionPolicy": string(policy),
		"owners":         []any{map[string]any{"kind": "User", "name": "owner-" + name}},
	}
	switch shape {
	case "database":
		spec["database"] = map[string]any{"mode": "Dedicated", "instances": int64(1), "storage": map[string]any{"size": "1Gi"}}
	case "secrets":
		spec["secrets"] = map[string]any{"items": []any{map[string]any{"name": "api-credentials", "remoteKey": "api", "refreshInterval": "1h"}}}
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(tenancyv1alpha1.GroupVersion.WithKind("Tenant"))
	u.SetName(name)
	return u
}

// parallel runs fn(i) for i in [0, n) on workers goroutines, and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// waitFor polls cond every 200 ms until it holds, the deadline passes or ctx ends.
func waitFor(ctx context.Context, deadline time.Duration, what string, cond func() (bool, string, error)) error {
	end := time.Now().Add(deadline)
	last := ""
	for {
		ok, msg, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		last = msg
		if time.Now().After(end) {
			return fmt.Errorf("%s: not after %s (%s)", what, deadline, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// settled waits until the Tenant controller has done at least n passes since the process started,
// has nothing queued, and the operator has sent no request for quiet: the steady state.
//
// A phase whose process must send requests (a restart: the new process lists and watches) passes
// its start as after: the operator is settled only once a request after it has been seen, so a
// quiet log from before the phase is never mistaken for the phase's end.
func (b *bench) settled(ctx context.Context, n int, deadline time.Duration, after ...time.Time) (time.Time, error) {
	var at time.Time
	err := waitFor(ctx, deadline, "the operator to settle", func() (bool, string, error) {
		m, err := scrape(b.stack.OperatorMetrics)
		if err != nil {
			return false, "", err
		}
		done := m.sum("controller_runtime_reconcile_total", "", `controller="tenant"`)[""]
		depth := m.sum("workqueue_depth", "", `name="tenant"`)[""]
		last, err := b.audit.quietSince()
		if err != nil {
			return false, "", err
		}
		if len(after) > 0 && !last.After(after[0]) {
			return false, fmt.Sprintf("no request seen since %s", after[0].Format(time.TimeOnly)), nil
		}
		if done < float64(n) || depth != 0 || time.Since(last) < quiet {
			return false, fmt.Sprintf("%v passes (want %d), %v queued, last request %s ago", done, n, depth, time.Since(last).Round(time.Second)), nil
		}
		at = last
		return true, "", nil
	})
	return at, err
}

func (b *bench) tenantCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.exists)
}

// heap is the operator's live heap after a forced GC, and its RSS.
func (b *bench) heap() (uint64, uint64, error) {
	h, err := heapAfterGC(b.pprofAddr)
	if err != nil {
		return 0, 0, err
	}
	r, err := rss(b.stack.Operator.Pid())
	return h, r, err
}
