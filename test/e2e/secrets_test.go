//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// The tests run in this order and share the tenants alpha and bravo; the Vault restart comes last
// but one, the deletions last.

func TestValueWrittenToVaultReachesTheTenantsSecret(t *testing.T) {
	value := randomValue(t)
	writeVaultSecret(t, "tenants/alpha/api", map[string]string{"token": value})
	applyTenant(t, "alpha", secretsSpec("Retain"))

	kubectl(t, "", "wait", "tenant/alpha", "--for=condition=SecretsReady", "--timeout=90s")
	expectSecret(t, ns("alpha"), "api-credentials", "token", value, wait)

	// The operator wrote the tenant's policy and role in Vault, bound to its reader by name and
	// namespace.
	role := vault(t, http.StatusOK, http.MethodGet, "auth/kubernetes/role/tenant-alpha", nil)["data"].(map[string]any)
	if fmt.Sprint(role["bound_service_account_names"]) != "[vault-reader]" || fmt.Sprint(role["bound_service_account_namespaces"]) != "["+ns("alpha")+"]" || role["audience"] != "vault" {
		t.Errorf("role tenant-alpha: %v", role)
	}
}

func TestRotatedValueReachesTheSecretWithinTheRefreshInterval(t *testing.T) {
	expectCondition(t, "alpha", tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, "")
	rotated := randomValue(t)
	writeVaultSecret(t, "tenants/alpha/api", map[string]string{"token": rotated})
	// ESO refreshes every refresh interval; allow one interval plus a reconcile's slack.
	took := expectSecret(t, ns("alpha"), "api-credentials", "token", rotated, refresh+10*time.Second)
	t.Logf("rotated value reached the Secret after %s (refresh interval %s)", took.Round(100*time.Millisecond), refresh)
}

func TestTenantCannotReadAnotherTenantsPath(t *testing.T) {
	secret := randomValue(t)
	writeVaultSecret(t, "tenants/bravo/api", map[string]string{"token": secret})
	applyTenant(t, "bravo", secretsSpec("Retain"))
	expectSecret(t, ns("bravo"), "api-credentials", "token", secret, wait)

	// A hand-written ExternalSecret in alpha's namespace, through alpha's store, asking for bravo's
	// path: Vault denies it and nothing lands in alpha's namespace.
	kubectl(t, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: steal-bravo
  namespace: %s
spec:
  refreshInterval: 5s
  secretStoreRef: {name: vault, kind: SecretStore}
  target: {name: steal-bravo}
  data:
  - secretKey: token
    remoteRef: {key: tenants/bravo/api, property: token}
`, ns("alpha")), "apply", "-f", "-")
	testenv.Eventually(t, wait, func() error {
		es := &externalsecrets.ExternalSecret{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns("alpha"), Name: "steal-bravo"}, es); err != nil {
			return err
		}
		for _, c := range es.Status.Conditions {
			if c.Type == "Ready" && c.Status == metav1.ConditionFalse && c.Reason == "SecretSyncedError" {
				return nil
			}
		}
		return fmt.Errorf("ExternalSecret steal-bravo is not refused yet: %+v", es.Status.Conditions)
	})
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns("alpha"), Name: "steal-bravo"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a Secret steal-bravo exists in alpha's namespace (err %v)", err)
	}

	// The same, straight at Vault: alpha's reader may read alpha's path and nothing of bravo's, and
	// cannot log in with bravo's role at all.
	token, code := loginAs(t, ns("alpha"), "vault-reader", "tenant-alpha")
	if code != http.StatusOK {
		t.Fatalf("alpha's reader could not log in with its own role: HTTP %d", code)
	}
	vaultAs(t, token, http.StatusOK, http.MethodGet, "secret/data/tenants/alpha/api", nil)
	vaultAs(t, token, http.StatusForbidden, http.MethodGet, "secret/data/tenants/bravo/api", nil)
	vaultAs(t, token, http.StatusForbidden, http.MethodGet, "secret/metadata/tenants?list=true", nil)
	if _, code := loginAs(t, ns("alpha"), "vault-reader", "tenant-bravo"); code != http.StatusForbidden {
		t.Errorf("alpha's reader logging in with bravo's role: HTTP %d, want 403", code)
	}
	kubectl(t, "", "delete", "externalsecret", "steal-bravo", "-n", ns("alpha"))
}

// standInForCloudNativePG writes the app Secret CloudNativePG generates for a Cluster; no PostgreSQL
// runs here (no container runtime), so nothing else would.
func standInForCloudNativePG(t *testing.T, namespace, password string) {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: database.AppSecretName},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "app", "password": password, "dbname": "app",
			"host": database.ClusterName + "-rw", "port": "5432"},
	}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func TestDatabaseCredentialsAreInVaultAtTheTenantsPathOnly(t *testing.T) {
	applyTenant(t, "charlie", "  database:\n    mode: Dedicated\n    storage: {size: 1Gi}\n")
	testenv.Eventually(t, wait, func() error {
		return k8s.Get(context.Background(), client.ObjectKey{Name: ns("charlie")}, &corev1.Namespace{})
	})
	password := randomValue(t)
	standInForCloudNativePG(t, ns("charlie"), password)

	expectCondition(t, "charlie", tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, "")
	data := vault(t, http.StatusOK, http.MethodGet, "secret/data/tenants/charlie/database", nil)["data"].(map[string]any)["data"].(map[string]any)
	if data["password"] != password || data["username"] != "app" {
		t.Fatalf("tenants/charlie/database does not hold the database's credentials (keys %v)", keys(data))
	}
	// Only there: no other entry in the mount holds the password.
	for _, p := range listAll(t, "") {
		if p == "tenants/charlie/database" {
			continue
		}
		entry := vault(t, http.StatusOK, http.MethodGet, "secret/data/"+p, nil)["data"].(map[string]any)["data"].(map[string]any)
		for k, v := range entry {
			if v == password {
				t.Errorf("the database password is also at %s (key %s)", p, k)
			}
		}
	}
	// And only charlie reads it: alpha's reader is denied, charlie's reader is allowed, and
	// charlie's pusher may write nothing but that one entry.
	alpha, _ := loginAs(t, ns("alpha"), "vault-reader", "tenant-alpha")
	vaultAs(t, alpha, http.StatusForbidden, http.MethodGet, "secret/data/tenants/charlie/database", nil)
	charlie, _ := loginAs(t, ns("charlie"), "vault-reader", "tenant-charlie")
	vaultAs(t, charlie, http.StatusOK, http.MethodGet, "secret/data/tenants/charlie/database", nil)
	pusher, code := loginAs(t, ns("charlie"), "vault-pusher", "tenant-charlie-push")
	if code != http.StatusOK {
		t.Fatalf("charlie's pusher could not log in: HTTP %d", code)
	}
	vaultAs(t, pusher, http.StatusForbidden, http.MethodPost, "secret/data/tenants/charlie/api", map[string]any{"data": map[string]string{"x": "y"}})
	vaultAs(t, pusher, http.StatusForbidden, http.MethodGet, "secret/data/tenants/alpha/api", nil)

	// A rotation by the database's owner reaches Vault: CloudNativePG's Secret is the one owner of
	// the password, Vault holds its copy.
	rotated := randomValue(t)
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns("charlie"), Name: database.AppSecretName}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte(rotated)
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func() error { // the PushSecret refreshes every minute
		got := vault(t, http.StatusOK, http.MethodGet, "secret/data/tenants/charlie/database", nil)["data"].(map[string]any)["data"].(map[string]any)
		if got["password"] != rotated {
			return fmt.Errorf("Vault does not hold the rotated database password yet")
		}
		return nil
	})
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// listAll lists every entry under dir in the KV mount, recursively.
func listAll(t *testing.T, dir string) []string {
	t.Helper()
	code, out, err := stack.Vault.Do(context.Background(), "LIST", "secret/metadata/"+dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if code == http.StatusNotFound {
		return nil
	}
	var resp struct {
		Data struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, k := range resp.Data.Keys {
		if strings.HasSuffix(k, "/") {
			entries = append(entries, listAll(t, dir+k)...)
		} else {
			entries = append(entries, dir+k)
		}
	}
	return entries
}

func TestPolicyAndRoleDeletedOutOfBandAreRecreated(t *testing.T) {
	vault(t, http.StatusNoContent, http.MethodDelete, "sys/policies/acl/tenant-alpha", nil)
	vault(t, http.StatusNoContent, http.MethodDelete, "auth/kubernetes/role/tenant-alpha", nil)
	testenv.Eventually(t, wait, func() error { // within the operator's vault.resyncInterval (5s here)
		if code := vaultStatus(t, "sys/policies/acl/tenant-alpha"); code != http.StatusOK {
			return fmt.Errorf("policy tenant-alpha: HTTP %d", code)
		}
		if code := vaultStatus(t, "auth/kubernetes/role/tenant-alpha"); code != http.StatusOK {
			return fmt.Errorf("role tenant-alpha: HTTP %d", code)
		}
		return nil
	})
}

func TestVaultRestartIsRecoveredWithoutTouchingTheOperator(t *testing.T) {
	pid := stack.Operator.Pid()
	if err := stack.Vault.Stop(); err != nil {
		t.Fatal(err)
	}
	c := expectCondition(t, "alpha", tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionFalse, "VaultUnavailable")
	t.Logf("with Vault down: SecretsReady=False %s: %s", c.Reason, c.Message)

	// The rest of the tenant keeps reconciling: a quota change is applied while Vault is down.
	kubectl(t, "", "patch", "tenant", "alpha", "--type=merge", "-p", `{"spec":{"quota":{"hard":{"pods":"7"}}}}`)
	testenv.Eventually(t, wait, func() error {
		list := &corev1.ResourceQuotaList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns("alpha"))); err != nil {
			return err
		}
		for _, q := range list.Items {
			if p := q.Spec.Hard[corev1.ResourcePods]; p.String() == "7" {
				return nil
			}
		}
		return fmt.Errorf("the quota change has not reached namespace %s", ns("alpha"))
	})

	// Vault comes back. A dev server keeps nothing across a restart, as a rebuilt Vault would not:
	// the platform runs its bootstrap again and restores the tenants' data; the operator, untouched,
	// recreates every tenant's policy and role.
	if err := stack.Vault.Start(); err != nil {
		t.Fatal(err)
	}
	if err := stack.BootstrapVault(context.Background()); err != nil {
		t.Fatal(err)
	}
	value := randomValue(t)
	writeVaultSecret(t, "tenants/alpha/api", map[string]string{"token": value})
	expectCondition(t, "alpha", tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, "")
	expectSecret(t, ns("alpha"), "api-credentials", "token", value, wait)
	// alpha was just reconciled; the others are recreated by their next pass (vault.resyncInterval
	// is 5 s here), not necessarily by now: wait for each rather than racing the operator.
	for _, tenant := range []string{"alpha", "bravo", "charlie"} {
		testenv.Eventually(t, wait, func() error {
			if code := vaultStatus(t, "sys/policies/acl/tenant-"+tenant); code != http.StatusOK {
				return fmt.Errorf("policy tenant-%s after the restart: HTTP %d", tenant, code)
			}
			return nil
		})
	}
	if !stack.Operator.Running() || stack.Operator.Pid() != pid {
		t.Fatal("the operator was restarted")
	}
}

func TestDeletePolicyRemovesVaultPolicyAndRole(t *testing.T) {
	writeVaultSecret(t, "tenants/delta/api", map[string]string{"token": randomValue(t)})
	applyTenant(t, "delta", secretsSpec("Delete"))
	expectCondition(t, "delta", tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, "")
	kubectl(t, "", "delete", "tenant", "delta", "--wait=false")
	standInForNamespaceController(t, ns("delta"))
	testenv.Eventually(t, wait, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: "delta"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("tenant delta is still there (%v)", err)
		}
		return nil
	})
	for _, p := range []string{"sys/policies/acl/tenant-delta", "auth/kubernetes/role/tenant-delta"} {
		if code := vaultStatus(t, p); code != http.StatusNotFound {
			t.Errorf("%s after Delete: HTTP %d, want 404", p, code)
		}
	}
	// The data stays: the spec did not ask for purgeOnDelete.
	if code := vaultStatus(t, "secret/data/tenants/delta/api"); code != http.StatusOK {
		t.Errorf("tenants/delta/api after Delete without purgeOnDelete: HTTP %d, want 200", code)
	}
}

func TestRetainPolicyKeepsVaultPolicyAndRole(t *testing.T) {
	kubectl(t, "", "delete", "tenant", "bravo", "--wait=false")
	testenv.Eventually(t, wait, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: "bravo"}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("tenant bravo is still there (%v)", err)
		}
		return nil
	})
	for _, p := range []string{"sys/policies/acl/tenant-bravo", "auth/kubernetes/role/tenant-bravo"} {
		if code := vaultStatus(t, p); code != http.StatusOK {
			t.Errorf("%s after Retain: HTTP %d, want 200", p, code)
		}
	}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: ns("bravo")}, &corev1.Namespace{}); err != nil {
		t.Errorf("the retained namespace: %v", err)
	}
}
