package tenant_test

// The suite runs the real manager (controllers.New, the production cache options) against a real
// kube-apiserver and etcd, as the operator's own identity bound to the generated manager
// ClusterRole only, with the tenant roles and admission policies from config/ installed.
//
// There is no kube-controller-manager here: no garbage collector and no namespace controller. Tests
// that need their effect say so where they stand in for them.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// sharedDBNamespace holds the platform's shared CloudNativePG cluster.
const sharedDBNamespace = "shared-db"

var (
	env        *testenv.Environment
	admin      client.Client // a cluster admin that is not the operator
	clientset  *kubernetes.Clientset
	writes     = &writeRecorder{}
	kubeconfig string // a cluster admin's kubeconfig, for kubectl
	kubectl    string
)

func TestMain(m *testing.M) { testenv.RunMain(m, run) }

func run(m *testing.M) (int, error) {
	var err error
	var stop func()
	env, stop, err = testenv.StartSuite("tenant", false)
	if err != nil {
		return 0, err
	}
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	admin, err = client.New(env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return 0, err
	}
	clientset = kubernetes.NewForConfigOrDie(env.Config)
	if err := writeAdminKubeconfig(); err != nil {
		return 0, err
	}

	opConfig, err := env.OperatorConfig(ctx, admin)
	if err != nil {
		return 0, err
	}
	opConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &recordingTransport{next: rt, rec: writes} })
	cfg := config.Default()
	cfg.TrustedNamespaces = []string{"monitoring", "cnpg-system"}
	cfg.Database.Backup = &config.BackupTemplate{ObjectStore: map[string]any{
		"destinationPath": "s3://platform-backups/tenants",
		"s3Credentials": map[string]any{
			"accessKeyId":     map[string]any{"name": "backup-credentials", "key": "ACCESS_KEY_ID"},
			"secretAccessKey": map[string]any{"name": "backup-credentials", "key": "ACCESS_SECRET_KEY"},
		},
	}}
	cfg.Database.Shared = &config.SharedCluster{Name: "shared-pg", Namespace: sharedDBNamespace}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sharedDBNamespace}}); err != nil {
		return 0, err
	}
	mgr, err := controllers.New(opConfig, controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0", MaxConcurrentTenants: 4, Config: cfg,
	})
	if err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		return code, fmt.Errorf("manager: %w", err)
	}
	return code, nil
}

func writeAdminKubeconfig() error {
	user, err := env.AddUser(envtest.User{Name: "test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tenant-suite")
	if err != nil {
		return err
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	kubectl = filepath.Join(env.BinaryAssetsDirectory, "kubectl")
	return os.WriteFile(kubeconfig, data, 0o600)
}

// writeRecorder records every request the operator sends except watches (which an informer opens
// once): writes, and reads that bypass the cache.
type writeRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (w *writeRecorder) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paths = append(w.paths, s)
}

// since returns the writes recorded after mark whose path mentions any of the fragments.
func (w *writeRecorder) since(mark int, fragments ...string) []string {
	var out []string
	for _, r := range w.requestsSince(mark, fragments...) {
		if !strings.HasPrefix(r, http.MethodGet+" ") {
			out = append(out, r)
		}
	}
	return out
}

// requestsSince returns the requests, reads included, recorded after mark whose path mentions any
// of the fragments.
func (w *writeRecorder) requestsSince(mark int, fragments ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range w.paths[mark:] {
		for _, f := range fragments {
			if strings.Contains(p, f) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func (w *writeRecorder) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.paths)
}

type recordingTransport struct {
	next http.RoundTripper
	rec  *writeRecorder
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Get("watch") != "true" {
		t.rec.add(req.Method + " " + req.URL.Path)
	}
	return t.next.RoundTrip(req)
}

// reconcileCount reads controller-runtime's count of finished Tenant reconciles.
func reconcileCount(t *testing.T) float64 {
	return tenantReconciles(t, func(string) bool { return true })
}

// tenantReconciles sums controller-runtime's count of finished Tenant reconciles whose result
// ("success", "error", "requeue", "requeue_after") matches.
func tenantReconciles(t *testing.T, match func(result string) bool) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["controller"] == "tenant" && match(labels["result"]) {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// waitForReconciles waits until the Tenant controller has finished at least n more passes.
func waitForReconciles(t *testing.T, from float64, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := reconcileCount(t) - from; got < float64(n) {
			return fmt.Errorf("%v of %d reconciles so far", got, n)
		}
		return nil
	})
}

// createTenant creates a Tenant and removes it (protection and finalizer included) at the end of
// the test.
func createTenant(t *testing.T, tnt *tenancyv1alpha1.Tenant) *tenancyv1alpha1.Tenant {
	t.Helper()
	ctx := context.Background()
	if err := admin.Create(ctx, tnt); err != nil {
		t.Fatalf("create Tenant %s: %v", tnt.Name, err)
	}
	return tnt
}

// getTenant reads the Tenant as it is now.
func getTenant(t *testing.T, name string) *tenancyv1alpha1.Tenant {
	t.Helper()
	got := &tenancyv1alpha1.Tenant{}
	if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
		t.Fatal(err)
	}
	return got
}

// waitForCondition waits until the Tenant's condition has the status and reason, for its current
// generation.
func waitForCondition(t *testing.T, name, typ string, status metav1.ConditionStatus, reason string) *tenancyv1alpha1.Tenant {
	t.Helper()
	var got *tenancyv1alpha1.Tenant
	testenv.Eventually(t, 30*time.Second, func() error {
		got = &tenancyv1alpha1.Tenant{}
		if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, typ)
		if c == nil || c.Status != status || (reason != "" && c.Reason != reason) || c.ObservedGeneration != got.Generation {
			return fmt.Errorf("%s is %+v; want %s/%s at generation %d", typ, c, status, reason, got.Generation)
		}
		return nil
	})
	return got
}

func waitForReady(t *testing.T, name string) *tenancyv1alpha1.Tenant {
	t.Helper()
	return waitForCondition(t, name, tenancyv1alpha1.ConditionReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonReady)
}

func metaItems(list client.ObjectList) ([]client.Object, error) {
	objs, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(client.Object))
	}
	return out, nil
}
