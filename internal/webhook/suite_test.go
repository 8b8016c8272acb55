package webhook_test

// The suite runs the real manager (controllers.New, the production cache options) as the operator's
// own identity, bound to the generated manager ClusterRole only, with its admission webhooks served
// and installed from config/webhook, and a real Vault dev server prepared as hack/vault-bootstrap.sh
// prepares one (Kubernetes auth enabled, the operator's policy from config/vault), which the
// operator reaches with a token holding only that policy.
//
// No External Secrets Operator runs: where a test needs a tenant's SecretStore to be Ready, it
// writes the status ESO would write (esoReady), and says so.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const wait = 30 * time.Second

var (
	env   *testenv.Environment
	admin client.Client
)

func TestMain(m *testing.M) { testenv.RunMain(m, run) }

func run(m *testing.M) (int, error) {
	var stop func()
	var err error
	env, stop, err = testenv.StartSuite("webhook", true)
	if err != nil {
		return 0, err
	}
	defer stop()
	vault, err := testenv.StartVault()
	if err != nil {
		return 0, err
	}
	defer func() { _ = vault.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if admin, err = client.New(env.Config, client.Options{Scheme: controllers.NewScheme()}); err != nil {
		return 0, err
	}
	cfg, err := bootstrapVault(ctx, vault)
	if err != nil {
		return 0, err
	}
	opConfig, err := env.OperatorConfig(ctx, admin)
	if err != nil {
		return 0, err
	}
	hooks := env.WebhookInstallOptions
	mgr, err := controllers.New(opConfig, controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0", MaxConcurrentTenants: 2, Config: cfg,
		Webhooks: true, WebhookHost: hooks.LocalServingHost, WebhookPort: hooks.LocalServingPort, WebhookCertDir: hooks.LocalServingCertDir,
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

// bootstrapVault prepares Vault as hack/vault-bootstrap.sh does (the dev server comes with KV v2 at
// secret/): Kubernetes auth enabled and the operator's policy written. The operator logs in with a
// token holding only that policy, kept in a Secret (vault.auth.method token), and its configuration
// is returned.
func bootstrapVault(ctx context.Context, v *testenv.Vault) (config.Config, error) {
	hcl, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "vault", "operator-policy.hcl"))
	if err != nil {
		return config.Config{}, err
	}
	policy := strings.NewReplacer("KUBERNETES_AUTH_MOUNT", "kubernetes", "KV_MOUNT", "secret", "PATH_PREFIX", "tenants").Replace(string(hcl))
	policyBody, _ := json.Marshal(map[string]any{"policy": policy})
	var token struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	for _, req := range []struct {
		path, body string
		out        any
	}{
		{path: "sys/auth/kubernetes", body: `{"type":"kubernetes"}`},
		{path: "sys/policies/acl/tenant-operator", body: string(policyBody)},
		{path: "auth/token/create", body: `{"policies":["tenant-operator"],"no_default_policy":true,"ttl":"1h"}`, out: &token},
	} {
		code, resp, err := v.Do(ctx, http.MethodPost, req.path, req.body)
		if err != nil || code/100 != 2 {
			return config.Config{}, fmt.Errorf("vault %s: %d %v: %s", req.path, code, err, resp)
		}
		if req.out != nil {
			if err := json.Unmarshal([]byte(resp), req.out); err != nil {
				return config.Config{}, fmt.Errorf("vault %s: %w", req.path, err)
			}
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testenv.OperatorNamespace}}
	if err := admin.Create(ctx, ns); client.IgnoreAlreadyExists(err) != nil {
		return config.Config{}, err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "vault-token"},
		StringData: map[string]string{"token": token.Auth.ClientToken}}
	if err := admin.Create(ctx, secret); err != nil {
		return config.Config{}, err
	}
	return config.Parse([]byte(fmt.Sprintf("vault:\n  address: %s\n  auth:\n    method: token\n    tokenSecret: {namespace: %s, name: vault-token, key: token}\n",
		v.Address, testenv.OperatorNamespace)))
}
