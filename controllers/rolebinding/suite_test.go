package rolebinding_test

// The suite runs the real manager (controllers.New) as the operator's own identity, bound to the
// generated manager ClusterRole only, with its admission webhook served and installed
// (config/webhook, failurePolicy Fail) and the tenant roles and admission policies from config/.
// Every request a user makes goes through the apiserver as that user (impersonation by a cluster
// admin), so RBAC and admission decide exactly as they would in a cluster.
//
// No kube-controller-manager runs: no garbage collector. The operator revokes a grant itself when
// its RoleBinding goes, and the tests check that, not the collector.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const wait = 30 * time.Second

var (
	env   *testenv.Environment
	admin client.Client
	// operatorRequests are the requests the operator sent to the apiserver.
	operatorRequests = &requestLog{}
)

func TestMain(m *testing.M) { testenv.RunMain(m, run) }

func run(m *testing.M) (int, error) {
	var stop func()
	var err error
	env, stop, err = testenv.StartSuite("rolebinding", true)
	if err != nil {
		return 0, err
	}
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if admin, err = client.New(env.Config, client.Options{Scheme: controllers.NewScheme()}); err != nil {
		return 0, err
	}
	opConfig, err := env.OperatorConfig(ctx, admin)
	if err != nil {
		return 0, err
	}
	cfg := config.Default()
	cfg.MaxGrantDuration = config.Duration{Duration: 720 * time.Hour}
	hooks := env.WebhookInstallOptions
	// The manager, its webhook and the webhook's RBAC cache all use this config.
	opConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &recordingTransport{next: rt, log: operatorRequests}
	})
	mgr, err := controllers.New(opConfig, controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0", MaxConcurrentTenants: 2, Config: cfg,
		Webhooks: true, WebhookHost: hooks.LocalServingHost, WebhookPort: hooks.LocalServingPort, WebhookCertDir: hooks.LocalServingCertDir,
	})
	if err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if err := setUpTenants(ctx); err != nil {
		cancel()
		if mgrErr := <-done; mgrErr != nil {
			return 0, fmt.Errorf("%w (and the manager: %v)", err, mgrErr)
		}
		return 0, err
	}
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		return code, fmt.Errorf("manager: %w", err)
	}
	return code, nil
}

// Two tenants: acme, whose SSO identities arrive prefixed "acme:", administered by acme:admin; and
// globex, administered by globex:admin.
const (
	acmeNS   = "tenant-acme"
	globexNS = "tenant-globex"
)

func setUpTenants(ctx context.Context) error {
	for _, name := range []string{"acme", "globex"} {
		t := &tenancyv1alpha1.Tenant{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: tenancyv1alpha1.TenantSpec{
				Owners: []tenancyv1alpha1.Subject{{Kind: tenancyv1alpha1.SubjectUser, Name: name + ":admin"}},
				SSO:    &tenancyv1alpha1.SSOSpec{UserPrefix: name + ":", GroupPrefix: name + ":"},
			},
		}
		if err := admin.Create(ctx, t); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ready := 0
		for _, name := range []string{"acme", "globex"} {
			t := &tenancyv1alpha1.Tenant{}
			if err := admin.Get(ctx, client.ObjectKey{Name: name}, t); err == nil && t.Status.Namespace != "" {
				for _, c := range t.Status.Conditions {
					if c.Type == tenancyv1alpha1.ConditionRBACReady && c.Status == metav1.ConditionTrue {
						ready++
					}
				}
			}
		}
		if ready == 2 {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // start-up wait before any test runs, not a test assertion
	}
	return fmt.Errorf("the tenants did not become RBACReady")
}

// as is a client acting as user, authenticated with groups.
func as(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	cfg := env.Impersonate(user, groups...)
	cfg.QPS, cfg.Burst = 100, 200 // a person's kubectl is not rate-limited to client-go's default 5/s
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requestLog records requests as "METHOD path?query".
type requestLog struct {
	mu       sync.Mutex
	requests []string
}

func (l *requestLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.requests)
}

// since are the requests recorded after mark.
func (l *requestLog) since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.requests[mark:]...)
}

type recordingTransport struct {
	next http.RoundTripper
	log  *requestLog
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	line := req.Method + " " + req.URL.Path
	if req.URL.RawQuery != "" {
		line += "?" + req.URL.RawQuery
	}
	t.log.mu.Lock()
	t.log.requests = append(t.log.requests, line)
	t.log.mu.Unlock()
	return t.next.RoundTrip(req)
}
