//go:build e2e

// Package e2e proves tenants end to end against real components, each its own process: a
// kube-apiserver and etcd with the operator's CRDs, roles, admission policies and webhook installed
// by `helm install charts/tenant-operator`, a HashiCorp Vault dev server set up by
// hack/vault-bootstrap.sh (the bootstrap docs/vault.md describes), the External Secrets Operator
// controller, and the operator binary built from main.go, serving its admission webhook with its
// self-managed certificate. Tenants are applied with kubectl, as a platform engineer or a GitOps
// tool would.
//
// This suite runs on envtest's control plane, not on a node, so two things here stand in for what a
// cluster would have (test/cluster, `make test-cluster`, runs the real ones and stands in for none):
//   - no kube-controller-manager: a namespace is finalized by the test (standInForNamespaceController);
//   - no CloudNativePG running PostgreSQL: the database's app Secret is written by the test, as
//     CloudNativePG would write it (standInForCloudNativePG).
//
// Run it with `make test-e2e`. Test values are random and never printed.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const (
	wait = 90 * time.Second
	// refresh is the refresh interval of the tenants' secrets in this suite.
	refresh = 5 * time.Second
)

var (
	stack *testenv.Stack
	k8s   client.Client // cluster admin, with the operator's scheme
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "tenant-operator-e2e-")
	if err != nil {
		return 0, err
	}
	manager := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build the operator from main.go: %v: %s", err, out)
	}
	ctx := context.Background()
	stack, err = testenv.StartStack(ctx, testenv.StackOptions{
		Dir: dir, Manager: manager,
		OperatorConfig: filepath.Join(testenv.RepoRoot(), "config", "dev", "operator-config.yaml"),
		VaultResync:    "5s", StoreRequeue: "5s",
	})
	if err != nil {
		return 0, err
	}
	defer stack.Stop()
	if k8s, err = client.New(stack.Env.Config, client.Options{Scheme: controllers.NewScheme()}); err != nil {
		return 0, err
	}
	code := m.Run()
	if code == 0 {
		code = leftovers(ctx)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: logs of the operator, ESO and Vault are kept in %s\n", dir)
		return code, nil
	}
	return code, os.RemoveAll(dir)
}

// leftovers fails the run when a test left a Tenant behind: each test removes what it created, so
// that no test passes only because another ran before it.
func leftovers(ctx context.Context) int {
	list := &tenancyv1alpha1.TenantList{}
	if err := k8s.List(ctx, list); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: list the Tenants left behind:", err)
		return 1
	}
	if len(list.Items) == 0 {
		return 0
	}
	for _, t := range list.Items {
		fmt.Fprintf(os.Stderr, "e2e: a test left Tenant %s behind: remove it with t.Cleanup\n", t.Name)
	}
	return 1
}

// ---- helpers ----

func randomValue(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := stack.Kubectl(context.Background(), stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// applyTenant applies a Tenant with kubectl, as a platform engineer or a GitOps tool would.
func applyTenant(t *testing.T, name, spec string) {
	t.Helper()
	kubectl(t, fmt.Sprintf("apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: %s\nspec:\n%s", name, spec),
		"apply", "--server-side", "--field-manager=platform-gitops", "-f", "-")
}

// newTenantName returns a tenant name no other test uses, and deletes that tenant, with its
// namespace, when the test ends: every test creates the tenants it needs and leaves none behind,
// so that each passes alone, in any order, and with others.
func newTenantName(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + "-" + randomValue(t)[:8]
	t.Cleanup(func() { removeTenant(t, name) })
	return name
}

// secretsTenant applies a Tenant whose Secret api-credentials is filled from a value written to its
// Vault path, waits until the value is in the Secret, and returns the tenant's name and the value.
func secretsTenant(t *testing.T, prefix, deletion string) (string, string) {
	t.Helper()
	name := newTenantName(t, prefix)
	value := randomValue(t)
	writeVaultSecret(t, "tenants/"+name+"/api", map[string]string{"token": value})
	applyTenant(t, name, secretsSpec(deletion))
	expectCondition(t, name, tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, "")
	expectSecret(t, ns(name), "api-credentials", "token", value, wait)
	return name, value
}

// removeTenant deletes a Tenant if it is still there and then its namespace, whichever deletion
// policy it has: a namespace the operator deletes is finalized here (standInForNamespaceController),
// a retained one is deleted too. Its Vault entries stay; nothing else uses their names.
func removeTenant(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	tnt := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Delete(ctx, tnt); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("clean up tenant %s: %v", name, err)
		return
	}
	testenv.Eventually(t, wait, func() error {
		tenantGone := apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: name}, tnt))
		namespace := &corev1.Namespace{}
		err := k8s.Get(ctx, client.ObjectKey{Name: ns(name)}, namespace)
		switch {
		case apierrors.IsNotFound(err) && tenantGone:
			return nil
		case apierrors.IsNotFound(err):
		case err != nil:
			return err
		case !namespace.DeletionTimestamp.IsZero(): // deleted by the operator or below: finalize it
			namespace.Spec.Finalizers = nil
			if err := k8s.SubResource("finalize").Update(ctx, namespace); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		case tenantGone: // retained
			if err := k8s.Delete(ctx, namespace); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		return fmt.Errorf("clean up: tenant %s (gone: %t) or its namespace is still there", name, tenantGone)
	})
}

func secretsSpec(deletion string) string {
	return fmt.Sprintf("  deletionPolicy: %s\n  secrets:\n    items:\n    - name: api-credentials\n      remoteKey: api\n      refreshInterval: %s\n", deletion, refresh)
}

// vault sends a request to Vault as root and fails the test unless it answers as expected.
func vault(t *testing.T, want int, method, path string, body any) map[string]any {
	t.Helper()
	return vaultAs(t, testenv.VaultRootToken, want, method, path, body)
}

func vaultAs(t *testing.T, token string, want int, method, path string, body any) map[string]any {
	t.Helper()
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	code, out, err := stack.Vault.DoAs(context.Background(), token, method, path, string(data))
	if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("%s %s: HTTP %d, want %d", method, path, code, want)
	}
	resp := map[string]any{}
	_ = json.Unmarshal([]byte(out), &resp)
	return resp
}

func vaultStatus(t *testing.T, path string) int {
	t.Helper()
	code, _, err := stack.Vault.Do(context.Background(), http.MethodGet, path, "")
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func writeVaultSecret(t *testing.T, path string, data map[string]string) {
	t.Helper()
	vault(t, http.StatusOK, http.MethodPost, "secret/data/"+path, map[string]any{"data": data})
}

// loginAs logs in to Vault with a token of a tenant's ServiceAccount, as ESO does for its store.
func loginAs(t *testing.T, namespace, serviceAccount, role string) (string, int) {
	t.Helper()
	jwt, err := stack.ServiceAccountToken(context.Background(), namespace, serviceAccount, "vault")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]string{"role": role, "jwt": jwt})
	code, out, err := stack.Vault.DoAs(context.Background(), "", http.MethodPost, "auth/kubernetes/login", string(data))
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		return "", code
	}
	var resp struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Auth.ClientToken, code
}

func tenantCondition(t *testing.T, name, typ string) (metav1.Condition, error) {
	t.Helper()
	tnt := &tenancyv1alpha1.Tenant{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tnt); err != nil {
		return metav1.Condition{}, err
	}
	c := meta.FindStatusCondition(tnt.Status.Conditions, typ)
	if c == nil {
		return metav1.Condition{}, fmt.Errorf("tenant %s has no %s condition yet", name, typ)
	}
	if c.ObservedGeneration != tnt.Generation {
		return *c, fmt.Errorf("tenant %s: %s is for generation %d, the spec is at %d", name, typ, c.ObservedGeneration, tnt.Generation)
	}
	return *c, nil
}

func expectCondition(t *testing.T, name, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	testenv.Eventually(t, wait, func() error {
		c, err := tenantCondition(t, name, typ)
		if err != nil {
			return err
		}
		got = c
		if c.Status != status || (reason != "" && c.Reason != reason) {
			return fmt.Errorf("tenant %s: %s=%s (%s: %s), want %s %s", name, typ, c.Status, c.Reason, c.Message, status, reason)
		}
		return nil
	})
	return got
}

// secretValue reads one key of a Secret in a tenant namespace ("" when absent).
func secretValue(namespace, name, key string) (string, error) {
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		return "", err
	}
	return string(s.Data[key]), nil
}

// expectSecret waits until the Secret holds want under key. Values are never printed.
func expectSecret(t *testing.T, namespace, name, key, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testenv.Eventually(t, within, func() error {
		got, err := secretValue(namespace, name, key)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("Secret %s/%s key %s does not hold the value written to Vault yet", namespace, name, key)
		}
		return nil
	})
	return time.Since(start)
}

// standInForNamespaceController finalizes a deleted namespace, as kube-controller-manager's
// namespace controller would once the namespace is empty: there is none in this control plane.
func standInForNamespaceController(t *testing.T, name string) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		ns := &corev1.Namespace{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, ns); err != nil {
			return err
		}
		if ns.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace %s is not being deleted yet", name)
		}
		ns.Spec.Finalizers = nil
		return k8s.SubResource("finalize").Update(context.Background(), ns)
	})
}

func ns(tenant string) string { return "tenant-" + tenant }
