package vault

// These tests run the client against a real Vault dev server (built by `make components`), logged
// in with a token that holds only the operator's policy from config/vault/operator-policy.hcl: what
// passes here is what the documented bootstrap allows, and nothing the tests do runs as root except
// setting up and inspecting Vault.

import (
	"context"
	"encoding/json"
	"errors"
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
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

var server *testenv.Vault

func TestMain(m *testing.M) {
	v, err := testenv.StartVault()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = v
	code := m.Run()
	_ = v.Stop()
	os.Exit(code)
}

// root sends a request to Vault as root and fails the test unless Vault answers with a 2xx.
func root(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	data, _ := json.Marshal(body)
	if body == nil {
		data = nil
	}
	code, out, err := server.Do(context.Background(), method, path, string(data))
	if err != nil || code/100 != 2 {
		t.Fatalf("%s %s as root: %d %v", method, path, code, err)
	}
	var resp map[string]any
	_ = json.Unmarshal([]byte(out), &resp)
	return resp
}

// rootStatus is the HTTP status of a root request.
func rootStatus(t *testing.T, method, path string) int {
	t.Helper()
	code, _, err := server.Do(context.Background(), method, path, "")
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// bootstrap prepares Vault as hack/vault-bootstrap.sh does (KV v2 at secret/ comes with the dev
// server): Kubernetes auth enabled and the operator's policy written.
func bootstrap(t *testing.T) {
	t.Helper()
	if rootStatus(t, http.MethodGet, "sys/auth/kubernetes/tune") != http.StatusOK {
		root(t, http.MethodPost, "sys/auth/kubernetes", map[string]any{"type": "kubernetes"})
	}
	hcl, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "vault", "operator-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	policy := strings.NewReplacer("KUBERNETES_AUTH_MOUNT", "kubernetes", "KV_MOUNT", "secret", "PATH_PREFIX", "tenants").Replace(string(hcl))
	root(t, http.MethodPut, "sys/policies/acl/tenant-operator", map[string]any{"policy": policy})
}

// operator is a client logged in with an operator-policy token that it reads from a Secret, and
// rotate replaces that token with a fresh one.
type operator struct {
	*Client
	reader client.Client
	token  string
}

func setUp(t *testing.T) *operator {
	t.Helper()
	bootstrap(t)
	op := &operator{token: operatorToken(t)}
	// A fake client only serves the token Secret for reading: the code under test writes to Vault.
	op.reader = fake.NewClientBuilder().WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-operator-system", Name: "vault-token"},
		Data:       map[string][]byte{"token": []byte(op.token)}}).Build()
	c, err := New(cfg(), op.reader)
	if err != nil {
		t.Fatal(err)
	}
	op.Client = c
	return op
}

func (op *operator) rotate(t *testing.T) {
	t.Helper()
	op.token = operatorToken(t)
	s := &corev1.Secret{}
	key := client.ObjectKey{Namespace: "tenant-operator-system", Name: "vault-token"}
	if err := op.reader.Get(context.Background(), key, s); err != nil {
		t.Fatal(err)
	}
	s.Data["token"] = []byte(op.token)
	if err := op.reader.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func cfg() config.Vault {
	c, err := config.Parse([]byte(fmt.Sprintf("vault:\n  address: %s\n  auth:\n    method: token\n    tokenSecret: {namespace: tenant-operator-system, name: vault-token, key: token}\n", server.Address)))
	if err != nil {
		panic(err)
	}
	return *c.Vault
}

// operatorToken is a fresh token with only the operator's policy.
func operatorToken(t *testing.T) string {
	t.Helper()
	resp := root(t, http.MethodPost, "auth/token/create", map[string]any{"policies": []string{"tenant-operator"}, "no_default_policy": true, "ttl": "1h"})
	return resp["auth"].(map[string]any)["client_token"].(string)
}

func acme() (*tenancyv1alpha1.Tenant, []secrets.Policy, []secrets.Role) {
	t := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme-" + fmt.Sprint(time.Now().UnixNano()%1e9)},
		Spec: tenancyv1alpha1.TenantSpec{Secrets: &tenancyv1alpha1.SecretsSpec{}, Database: &tenancyv1alpha1.DatabaseSpec{}}}
	v := cfg()
	return t, secrets.Policies(t, &v), secrets.Roles(t, "tenant-"+t.Name, &v)
}

func ensureAll(t *testing.T, c *operator, policies []secrets.Policy, roles []secrets.Role) (writes int) {
	t.Helper()
	ctx := context.Background()
	for _, p := range policies {
		changed, err := c.EnsurePolicy(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if changed {
			writes++
		}
	}
	for _, r := range roles {
		changed, err := c.EnsureRole(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if changed {
			writes++
		}
	}
	return writes
}

func TestEnsureWritesOnceThenOnlyReads(t *testing.T) {
	c := setUp(t)
	_, policies, roles := acme()
	if got := ensureAll(t, c, policies, roles); got != 4 {
		t.Fatalf("first pass wrote %d objects, want 4 (two policies, two roles)", got)
	}
	for i := 0; i < 3; i++ {
		if got := ensureAll(t, c, policies, roles); got != 0 {
			t.Fatalf("pass %d wrote %d objects to a Vault already as desired", i+2, got)
		}
	}
	role := root(t, http.MethodGet, "auth/kubernetes/role/"+roles[0].Name, nil)["data"].(map[string]any)
	if fmt.Sprint(role["bound_service_account_namespaces"]) != "[tenant-"+strings.TrimPrefix(roles[0].Name, "tenant-")+"]" || role["audience"] != "vault" {
		t.Errorf("role as Vault stores it: %v", role)
	}
}

func TestOutOfBandChangesAreRepaired(t *testing.T) {
	c := setUp(t)
	_, policies, roles := acme()
	ensureAll(t, c, policies, roles)

	root(t, http.MethodDelete, "sys/policies/acl/"+policies[0].Name, nil)
	root(t, http.MethodPost, "auth/kubernetes/role/"+roles[0].Name, map[string]any{"bound_service_account_namespaces": []string{"*"}})
	if got := ensureAll(t, c, policies, roles); got != 2 {
		t.Fatalf("repaired %d objects, want the deleted policy and the widened role", got)
	}
	role := root(t, http.MethodGet, "auth/kubernetes/role/"+roles[0].Name, nil)["data"].(map[string]any)
	if fmt.Sprint(role["bound_service_account_namespaces"]) == "[*]" {
		t.Errorf("the widened role was not narrowed again: %v", role)
	}
	rules := root(t, http.MethodGet, "sys/policies/acl/"+policies[0].Name, nil)["data"].(map[string]any)["policy"]
	if rules != policies[0].Rules {
		t.Errorf("policy after repair:\n%v\nwant:\n%s", rules, policies[0].Rules)
	}
}

// The operator's own policy lets it attach only tenant policies to a role: a role that would hand
// out another platform policy is refused by Vault, and reported as refused, not as an outage.
func TestOperatorCannotAttachOtherPolicies(t *testing.T) {
	c := setUp(t)
	_, _, roles := acme()
	r := roles[0]
	r.Params = map[string]any{}
	for k, v := range roles[0].Params {
		r.Params[k] = v
	}
	r.Params["token_policies"] = []string{"platform-admin"}
	_, err := c.EnsureRole(context.Background(), r)
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("EnsureRole with a non-tenant policy: %v, want a 403 refusal", err)
	}
	if _, err := c.EnsurePolicy(context.Background(), secrets.Policy{Name: "platform-admin", Rules: `path "*" { capabilities = ["sudo"] }`}); err == nil {
		t.Fatal("the operator wrote a policy outside tenant-*")
	}
}

func TestDeleteAndPurge(t *testing.T) {
	c := setUp(t)
	tnt, policies, roles := acme()
	ensureAll(t, c, policies, roles)
	base := "secret/data/tenants/" + tnt.Name
	for _, p := range []string{base + "/api", base + "/payments/stripe", base + "-other/api"} {
		root(t, http.MethodPost, p, map[string]any{"data": map[string]string{"k": "test-value"}})
	}
	ctx := context.Background()
	if err := c.Delete(ctx, policies, roles); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, policies, roles); err != nil {
		t.Fatalf("deleting again (a retried finalizer): %v", err)
	}
	for _, p := range policies {
		if code := rootStatus(t, http.MethodGet, "sys/policies/acl/"+p.Name); code != http.StatusNotFound {
			t.Errorf("policy %s after Delete: HTTP %d", p.Name, code)
		}
	}
	for _, r := range roles {
		if code := rootStatus(t, http.MethodGet, "auth/kubernetes/role/"+r.Name); code != http.StatusNotFound {
			t.Errorf("role %s after Delete: HTTP %d", r.Name, code)
		}
	}
	if code := rootStatus(t, http.MethodGet, base+"/api"); code != http.StatusOK {
		t.Fatalf("Delete alone removed the tenant's data (HTTP %d)", code)
	}
	if err := c.Purge(ctx, "tenants/"+tnt.Name); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api", "/payments/stripe"} {
		if code := rootStatus(t, http.MethodGet, "secret/metadata/tenants/"+tnt.Name+p); code != http.StatusNotFound {
			t.Errorf("%s after Purge: HTTP %d", p, code)
		}
	}
	if code := rootStatus(t, http.MethodGet, base+"-other/api"); code != http.StatusOK {
		t.Errorf("Purge reached a neighbouring path that shares the tenant's name as a prefix (HTTP %d)", code)
	}
}

// A revoked or replaced token is not fatal: the client reads the Secret again and carries on.
func TestRotatedTokenIsPickedUp(t *testing.T) {
	c := setUp(t)
	_, policies, roles := acme()
	ensureAll(t, c, policies, roles)
	root(t, http.MethodPost, "auth/token/revoke", map[string]any{"token": c.token})
	c.rotate(t)
	root(t, http.MethodDelete, "sys/policies/acl/"+policies[0].Name, nil)
	if got := ensureAll(t, c, policies, roles); got != 1 {
		t.Fatalf("after the token was rotated the client repaired %d objects, want 1", got)
	}
}

// Vault going away is ErrUnavailable (SecretsReady=False, VaultUnavailable, retried), and the same
// client works again once Vault is back. Runs last: it restarts the server, which loses everything.
func TestVaultDownThenBack(t *testing.T) {
	c := setUp(t)
	_, policies, roles := acme()
	ensureAll(t, c, policies, roles)

	if err := server.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsurePolicy(context.Background(), policies[0]); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("EnsurePolicy with Vault down: %v, want ErrUnavailable", err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	// A dev server restarts empty, as a rebuilt Vault would: the platform runs the bootstrap again
	// and hands the operator a new token; the same client recreates the tenant's policies and roles.
	bootstrap(t)
	c.rotate(t)
	if got := ensureAll(t, c, policies, roles); got != 4 {
		t.Fatalf("after the restart the same client recreated %d objects, want 4", got)
	}

	root(t, http.MethodPost, "sys/seal", nil)
	if _, err := c.EnsurePolicy(context.Background(), policies[0]); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("EnsurePolicy with Vault sealed: %v, want ErrUnavailable", err)
	}
}
