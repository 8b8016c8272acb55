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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// Each test creates the tenants it needs, under names no other test uses, and removes them when it
// ends (newTenantName): the tests pass alone, in any order, and together.

func TestValueWrittenToVaultReachesTheTenantsSecret(t *testing.T) {
	name := newTenantName(t, "alpha")
	value := randomValue(t)
	writeVaultSecret(t, "tenants/"+name+"/api", map[string]string{"token": value})
	applyTenant(t, name, secretsSpec("Retain"))

	kubectl(t, "", "wait", "tenant/"+name, "--for=condition=SecretsReady", "--timeout=90s")
	expectSecret(t, ns(name), "api-credentials", "token", value, wait)

	// The operator wrote the tenant's policy and role in Vault, bound to its reader by name and
	// namespace.
	role := vault(t, http.StatusOK, http.MethodGet, "auth/kubernetes/role/tenant-"+name, nil)["data"].(map[string]any)
	if fmt.Sprint(role["bound_service_account_names"]) != "[vault-reader]" || fmt.Sprint(role["bound_service_account_namespaces"]) != "["+ns(name)+"]" || role["audience"] != "vault" {
		t.Errorf("role tenant-%s: %v", name, role)
	}
}

func TestRotatedValueReachesTheSecretWithinTheRefreshInterval(t *testing.T) {
	name, _ := secretsTenant(t, "rotate", "Retain")
	rotated := randomValue(t)
	writeVaultSecret(t, "tenants/"+name+"/api", map[string]string{"token": rotated})
	// ESO refreshes every refresh interval; allow one interval plus a reconcile's slack.
	took := expectSecret(t, ns(name), "api-credentials", "token", rotated, refresh+10*time.Second)
	t.Logf("rotated value reached the Secret after %s (refresh interval %s)", took.Round(100*time.Millisecond), refresh)
}

func TestTenantCannotReadAnotherTenantsPath(t *testing.T) {
	alpha, _ := secretsTenant(t, "alpha", "Retain")
	bravo, _ := secretsTenant(t, "bravo", "Retain")

	// A hand-written ExternalSecret in alpha's namespace, through alpha's store, asking for bravo's
	// path: Vault denies it and nothing lands in alpha's namespace.
	t.Cleanup(func() {
		kubectl(t, "", "delete", "externalsecret", "steal-bravo", "-n", ns(alpha), "--ignore-not-found")
	})
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
    remoteRef: {key: tenants/%s/api, property: token}
`, ns(alpha), bravo), "apply", "-f", "-")
	testenv.Eventually(t, wait, func() error {
		es := &externalsecrets.ExternalSecret{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns(alpha), Name: "steal-bravo"}, es); err != nil {
			return err
		}
		for _, c := range es.Status.Conditions {
			if c.Type == "Ready" && c.Status == metav1.ConditionFalse && c.Reason == "SecretSyncedError" {
				return nil
			}
		}
		return fmt.Errorf("ExternalSecret steal-bravo is not refused yet: %+v", es.Status.Conditions)
	})
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns(alpha), Name: "steal-bravo"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a Secret steal-bravo exists in alpha's namespace (err %v)", err)
	}

	// The same, straight at Vault: alpha's reader may read alpha's path and nothing of bravo's, and
	// cannot log in with bravo's role at all.
	token := mustLogin(t, alpha, "vault-reader", "tenant-"+alpha)
	vaultAs(t, token, http.StatusOK, http.MethodGet, "secret/data/tenants/"+alpha+"/api", nil)
	vaultAs(t, token, http.StatusForbidden, http.MethodGet, "secret/data/tenants/"+bravo+"/api", nil)
	vaultAs(t, token, http.StatusForbidden, http.MethodGet, "secret/metadata/tenants?list=true", nil)
	if _, code := loginAs(t, ns(alpha), "vault-reader", "tenant-"+bravo); code != http.StatusForbidden {
		t.Errorf("alpha's reader logging in with bravo's role: HTTP %d, want 403", code)
	}
}

// mustLogin logs in to Vault as a ServiceAccount of a tenant's namespace with one of its roles.
func mustLogin(t *testing.T, tenant, serviceAccount, role string) string {
	t.Helper()
	token, code := loginAs(t, ns(tenant), serviceAccount, role)
	if code != http.StatusOK {
		t.Fatalf("%s of tenant %s could not log in with role %s: HTTP %d", serviceAccount, tenant, role, code)
	}
	return token
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
	other, _ := secretsTenant(t, "alpha", "Retain")
	charlie := newTenantName(t, "charlie")
	dbPath := "tenants/" + charlie + "/database"
	applyTenant(t, charlie, "  database:\n    mode: Dedicated\n    storage: {size: 1Gi}\n")
	testenv.Eventually(t, wait, func() error {
		return k8s.Get(context.Background(), client.ObjectKey{Name: ns(charlie)}, &corev1.Namespace{})
	})
	password := randomValue(t)
	standInForCloudNativePG(t, ns(charlie), password)

	expectCondition(t, charlie, tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, "")
	data := vault(t, http.StatusOK, http.MethodGet, "secret/data/"+dbPath, nil)["data"].(map[string]any)["data"].(map[string]any)
	if data["password"] != password || data["username"] != "app" {
		t.Fatalf("%s does not hold the database's credentials (keys %v)", dbPath, keys(data))
	}
	// Only there: no other entry in the mount holds the password.
	for _, p := range listAll(t, "") {
		if p == dbPath {
			continue
		}
		entry := vault(t, http.StatusOK, http.MethodGet, "secret/data/"+p, nil)["data"].(map[string]any)["data"].(map[string]any)
		for k, v := range entry {
			if v == password {
				t.Errorf("the database password is also at %s (key %s)", p, k)
			}
		}
	}
	// And only charlie reads it: another tenant's reader is denied, charlie's reader is allowed,
	// and charlie's pusher may write nothing but that one entry.
	otherReader := mustLogin(t, other, "vault-reader", "tenant-"+other)
	vaultAs(t, otherReader, http.StatusForbidden, http.MethodGet, "secret/data/"+dbPath, nil)
	reader := mustLogin(t, charlie, "vault-reader", "tenant-"+charlie)
	vaultAs(t, reader, http.StatusOK, http.MethodGet, "secret/data/"+dbPath, nil)
	pusher := mustLogin(t, charlie, "vault-pusher", "tenant-"+charlie+"-push")
	vaultAs(t, pusher, http.StatusForbidden, http.MethodPost, "secret/data/tenants/"+charlie+"/api", map[string]any{"data": map[string]string{"x": "y"}})
	vaultAs(t, pusher, http.StatusForbidden, http.MethodGet, "secret/data/tenants/"+other+"/api", nil)

	// A rotation by the database's owner reaches Vault: CloudNativePG's Secret is the one owner of
	// the password, Vault holds its copy.
	rotated := randomValue(t)
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns(charlie), Name: database.AppSecretName}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte(rotated)
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func() error { // the PushSecret refreshes every minute
		got := vault(t, http.StatusOK, http.MethodGet, "secret/data/"+dbPath, nil)["data"].(map[string]any)["data"].(map[string]any)
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
	name, _ := secretsTenant(t, "alpha", "Retain")
	policy, role := "sys/policies/acl/tenant-"+name, "auth/kubernetes/role/tenant-"+name
	vault(t, http.StatusNoContent, http.MethodDelete, policy, nil)
	vault(t, http.StatusNoContent, http.MethodDelete, role, nil)
	testenv.Eventually(t, wait, func() error { // within the operator's vault.resyncInterval (5s here)
		if code := vaultStatus(t, policy); code != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", policy, code)
		}
		if code := vaultStatus(t, role); code != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", role, code)
		}
		return nil
	})
}

func TestVaultRestartIsRecoveredWithoutTouchingTheOperator(t *testing.T) {
	alpha, _ := secretsTenant(t, "alpha", "Retain")
	bravo, _ := secretsTenant(t, "bravo", "Retain")
	pid := stack.Operator.Pid()
	if err := stack.Vault.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() { // the tests after this one need Vault, even if this one failed half-way
		if restarted {
			return
		}
		if err := stack.Vault.Start(); err != nil {
			t.Error(err)
		} else if err := stack.BootstrapVault(context.Background()); err != nil {
			t.Error(err)
		}
	})
	c := expectCondition(t, alpha, tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionFalse, "VaultUnavailable")
	t.Logf("with Vault down: SecretsReady=False %s: %s", c.Reason, c.Message)

	// The rest of the tenant keeps reconciling: a quota change is applied while Vault is down.
	kubectl(t, "", "patch", "tenant", alpha, "--type=merge", "-p", `{"spec":{"quota":{"hard":{"pods":"7"}}}}`)
	testenv.Eventually(t, wait, func() error {
		list := &corev1.ResourceQuotaList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns(alpha))); err != nil {
			return err
		}
		for _, q := range list.Items {
			if p := q.Spec.Hard[corev1.ResourcePods]; p.String() == "7" {
				return nil
			}
		}
		return fmt.Errorf("the quota change has not reached namespace %s", ns(alpha))
	})

	// Vault comes back. A dev server keeps nothing across a restart, as a rebuilt Vault would not:
	// the platform runs its bootstrap again and restores the tenants' data; the operator, untouched,
	// recreates every tenant's policy and role.
	if err := stack.Vault.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	if err := stack.BootstrapVault(context.Background()); err != nil {
		t.Fatal(err)
	}
	value := randomValue(t)
	writeVaultSecret(t, "tenants/"+alpha+"/api", map[string]string{"token": value})
	expectCondition(t, alpha, tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, "")
	expectSecret(t, ns(alpha), "api-credentials", "token", value, wait)
	// alpha was just reconciled; bravo is recreated by its next pass (vault.resyncInterval is 5 s
	// here), not necessarily by now: wait for each rather than racing the operator.
	for _, tenant := range []string{alpha, bravo} {
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
	name, _ := secretsTenant(t, "delta", "Delete")
	kubectl(t, "", "delete", "tenant", name, "--wait=false")
	standInForNamespaceController(t, ns(name))
	testenv.Eventually(t, wait, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("tenant %s is still there (%v)", name, err)
		}
		return nil
	})
	for _, p := range []string{"sys/policies/acl/tenant-" + name, "auth/kubernetes/role/tenant-" + name} {
		if code := vaultStatus(t, p); code != http.StatusNotFound {
			t.Errorf("%s after Delete: HTTP %d, want 404", p, code)
		}
	}
	// The data stays: the spec did not ask for purgeOnDelete.
	if code := vaultStatus(t, "secret/data/tenants/"+name+"/api"); code != http.StatusOK {
		t.Errorf("tenants/%s/api after Delete without purgeOnDelete: HTTP %d, want 200", name, code)
	}
}

func TestRetainPolicyKeepsVaultPolicyAndRole(t *testing.T) {
	name, _ := secretsTenant(t, "bravo", "Retain")
	kubectl(t, "", "delete", "tenant", name, "--wait=false")
	testenv.Eventually(t, wait, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("tenant %s is still there (%v)", name, err)
		}
		return nil
	})
	for _, p := range []string{"sys/policies/acl/tenant-" + name, "auth/kubernetes/role/tenant-" + name} {
		if code := vaultStatus(t, p); code != http.StatusOK {
			t.Errorf("%s after Retain: HTTP %d, want 200", p, code)
		}
	}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: ns(name)}, &corev1.Namespace{}); err != nil {
		t.Errorf("the retained namespace: %v", err)
	}
}

// Vault cleanup is keyed on the tenant, not on its namespace: a suspended Tenant whose namespace
// was deleted by someone else still has its Vault policies and roles removed when it is deleted
// under Delete (and its deletion finishes although it is suspended).
func TestVaultCleanupDoesNotNeedTheNamespace(t *testing.T) {
	ctx := context.Background()
	name, _ := secretsTenant(t, "nsgone", "Delete")
	tnt := &tenancyv1alpha1.Tenant{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: name}, tnt); err != nil {
		t.Fatal(err)
	}
	tnt.Spec.Suspend = true
	if err := k8s.Update(ctx, tnt); err != nil {
		t.Fatal(err)
	}
	expectCondition(t, name, tenancyv1alpha1.ConditionReady, metav1.ConditionFalse, tenancyv1alpha1.ReasonSuspended)
	kubectl(t, "", "delete", "namespace", ns(name), "--wait=false")
	standInForNamespaceController(t, ns(name))
	testenv.Eventually(t, wait, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Name: ns(name)}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s still there: %v", ns(name), err)
		}
		return nil
	})
	kubectl(t, "", "delete", "tenant", name, "--wait=false")
	testenv.Eventually(t, wait, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("tenant %s is still there (%v)", name, err)
		}
		return nil
	})
	for _, p := range []string{"sys/policies/acl/tenant-" + name, "sys/policies/acl/tenant-" + name + "-push", "auth/kubernetes/role/tenant-" + name} {
		if code := vaultStatus(t, p); code != http.StatusNotFound {
			t.Errorf("%s after deleting a tenant whose namespace was gone: HTTP %d, want 404", p, code)
		}
	}
}

// A Vault that refuses to remove a tenant's policy (HTTP 403: the operator's Vault policy does not
// allow it) blocks the deletion with a Stalled condition that says what to do; the explicit
// skip-vault-cleanup annotation lets it finish and is recorded in a Warning event.
func TestVaultRefusalBlocksDeletionUntilExplicitlySkipped(t *testing.T) {
	ctx := context.Background()
	name, _ := secretsTenant(t, "refused", "Delete")
	policy := vault(t, http.StatusOK, http.MethodGet, "sys/policies/acl/tenant-operator", nil)["data"].(map[string]any)["policy"].(string)
	denied := policy + fmt.Sprintf("\npath \"sys/policies/acl/tenant-%s\" {\n  capabilities = [\"deny\"]\n}\n", name)
	vault(t, http.StatusNoContent, http.MethodPut, "sys/policies/acl/tenant-operator", map[string]string{"policy": denied})
	t.Cleanup(func() {
		vault(t, http.StatusNoContent, http.MethodPut, "sys/policies/acl/tenant-operator", map[string]string{"policy": policy})
	})

	kubectl(t, "", "delete", "tenant", name, "--wait=false")
	testenv.Eventually(t, wait, func() error {
		ready, err := tenantCondition(t, name, tenancyv1alpha1.ConditionReady)
		if err != nil {
			return err
		}
		stalled, err := tenantCondition(t, name, tenancyv1alpha1.ConditionStalled)
		if err != nil {
			return err
		}
		if ready.Reason != tenancyv1alpha1.ReasonVaultRefused || !strings.Contains(ready.Message, tenancyv1alpha1.AnnotationSkipVaultCleanup) ||
			stalled.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready is %s: %s; Stalled %s", ready.Reason, ready.Message, stalled.Status)
		}
		return nil
	})
	if err := k8s.Get(ctx, client.ObjectKey{Name: name}, &tenancyv1alpha1.Tenant{}); err != nil {
		t.Fatalf("the Tenant was released while Vault refused its cleanup: %v", err)
	}
	kubectl(t, "", "annotate", "tenant", name, tenancyv1alpha1.AnnotationSkipVaultCleanup+"=policy removed by hand in CHG-42")
	standInForNamespaceController(t, ns(name))
	testenv.Eventually(t, wait, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, &tenancyv1alpha1.Tenant{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("tenant %s is still there (%v)", name, err)
		}
		return nil
	})
	out := kubectl(t, "", "get", "events.events.k8s.io", "-n", "default", "--field-selector", "regarding.name="+name,
		"-o", "jsonpath={range .items[*]}{.reason}:{.note}{\"\\n\"}{end}")
	if !strings.Contains(out, tenancyv1alpha1.ReasonVaultCleanupSkipped+":") || !strings.Contains(out, "CHG-42") {
		t.Errorf("no VaultCleanupSkipped event naming the reason; events:\n%s", out)
	}
}

// Removing spec.secrets from a Tenant that has no database removes the stores, ExternalSecrets and
// ServiceAccounts it had: each area prunes its own kinds, the secrets area included when it no
// longer asks for anything.
func TestRemovingSecretsPrunesTheirObjects(t *testing.T) {
	ctx := context.Background()
	name, _ := secretsTenant(t, "unsecret", "Retain")
	kubectl(t, "", "patch", "tenant", name, "--type=json", "-p", `[{"op":"remove","path":"/spec/secrets"}]`)
	expectCondition(t, name, tenancyv1alpha1.ConditionSecretsReady, metav1.ConditionTrue, tenancyv1alpha1.ReasonNotRequested)
	testenv.Eventually(t, wait, func() error {
		for _, list := range []client.ObjectList{&externalsecrets.ExternalSecretList{}, &externalsecrets.SecretStoreList{}, &corev1.ServiceAccountList{}} {
			if err := k8s.List(ctx, list, client.InNamespace(ns(name)), client.MatchingLabels{tenancyv1alpha1.LabelTenant: name}); err != nil {
				return err
			}
			if n := meta.LenList(list); n != 0 {
				return fmt.Errorf("%T still holds %d of the tenant's objects", list, n)
			}
		}
		return nil
	})
}
