// Package secrets builds what keeps a tenant's secrets in Vault and brings them into its namespace:
// the Vault policies and Kubernetes-auth roles (as data, applied by internal/vault), and the
// ServiceAccounts, SecretStores, ExternalSecrets and the PushSecret of the database credentials.
//
// Two identities per tenant, each bound by ServiceAccount name and namespace (never by a label):
//   - the reader may read "<mount>/data/<tenant path>/*" and nothing else;
//   - the pusher may write only "<tenant path>/database", the copy of the database credentials
//     that External Secrets Operator pushes from the database's own Secret.
package secrets

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
)

// Names of the objects in the tenant namespace.
const (
	ReaderServiceAccount = "vault-reader"
	PusherServiceAccount = "vault-pusher"
	ReaderStore          = "vault"
	PusherStore          = "vault-push"
	DatabasePushName     = "database-credentials-to-vault"
	DatabaseKey          = "database"
)

// Path is the tenant's path in the KV mount: the spec's override, else "<prefix>/<tenant>".
func Path(t *tenancyv1alpha1.Tenant, v *config.Vault) string {
	if s := t.Spec.Secrets; s != nil && s.VaultPath != "" {
		return s.VaultPath
	}
	return v.PathPrefix + "/" + t.Name
}

// ReaderName names the tenant's reader Vault policy and Kubernetes-auth role.
func ReaderName(t *tenancyv1alpha1.Tenant) string { return "tenant-" + t.Name }

// PusherName names the tenant's pusher Vault policy and Kubernetes-auth role (its database
// credentials' copy into Vault).
func PusherName(t *tenancyv1alpha1.Tenant) string { return "tenant-" + t.Name + "-push" }

// pushesDatabase says whether the tenant has database credentials to copy into Vault.
func pushesDatabase(t *tenancyv1alpha1.Tenant) bool { return t.Spec.Database != nil }

// Requested says whether the tenant needs anything from Vault.
func Requested(t *tenancyv1alpha1.Tenant) bool { return t.Spec.Secrets != nil || pushesDatabase(t) }

// Validate refuses a Vault path that reaches into another tenant's: an override inside the
// platform's prefix other than the tenant's own path, or one that contains or lies inside another
// tenant's path. others maps every other tenant's name to its path. A pure policy function.
func Validate(t *tenancyv1alpha1.Tenant, v *config.Vault, others map[string]string) (string, bool) {
	if v == nil {
		return "the operator configuration has no Vault: secrets cannot be provided", false
	}
	path := Path(t, v)
	if !insideOwnPlace(t, v) {
		return fmt.Sprintf("spec.secrets.vaultPath: %q is inside %q, where only the operator places tenants", path, v.PathPrefix+"/"), false
	}
	names := make([]string, 0, len(others))
	for n := range others {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if Overlaps(path, others[n]) {
			return fmt.Sprintf("spec.secrets.vaultPath: %q overlaps the Vault path of tenant %s", path, n), false
		}
	}
	return "", true
}

// insideOwnPlace is Validate's rule on the tenant alone: a path inside the platform's prefix is the
// tenant's own or none.
func insideOwnPlace(t *tenancyv1alpha1.Tenant, v *config.Vault) bool {
	if t.Spec.Secrets == nil || t.Spec.Secrets.VaultPath == "" {
		return true
	}
	path := t.Spec.Secrets.VaultPath
	return path == v.PathPrefix+"/"+t.Name || (path != v.PathPrefix && !strings.HasPrefix(path, v.PathPrefix+"/"))
}

// Overlaps says whether two Vault paths are the same or one contains the other.
func Overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// Held is the Vault path a tenant holds, and whether it holds one: a tenant that uses Vault holds
// its path unless the path breaks the rule on the tenant alone (inside the platform's prefix and
// not its own), in which case the tenant is refused and keeps no one else out.
func Held(t *tenancyv1alpha1.Tenant, v *config.Vault) (string, bool) {
	if v == nil || !Requested(t) || !insideOwnPlace(t, v) {
		return "", false
	}
	return Path(t, v), true
}

// Precedes says whether tenant a came before tenant b: it was created earlier or, created in the
// same second, its name sorts first. Of two tenants whose paths overlap, the one that came first
// keeps its path and only the other is refused, so a newcomer never breaks a working tenant.
func Precedes(a, b *tenancyv1alpha1.Tenant) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// Policy is a Vault ACL policy.
type Policy struct {
	Name  string
	Rules string // HCL
}

// Policies are the tenant's reader policy and, when it has a database, its pusher policy.
func Policies(t *tenancyv1alpha1.Tenant, v *config.Vault) []Policy {
	path := Path(t, v)
	out := []Policy{{Name: ReaderName(t), Rules: fmt.Sprintf(
		"# Managed by tenant-operator for tenant %s: read its own secrets and nothing else.\n"+
			"path \"%s/data/%s/*\" {\n  capabilities = [\"read\"]\n}\n", t.Name, v.KVMount, path)}}
	if pushesDatabase(t) {
		out = append(out, Policy{Name: PusherName(t), Rules: fmt.Sprintf(
			"# Managed by tenant-operator for tenant %s: keep the copy of its database credentials.\n"+
				"path \"%s/data/%s/%s\" {\n  capabilities = [\"create\", \"update\", \"read\"]\n}\n"+
				"path \"%s/metadata/%s/%s\" {\n  capabilities = [\"create\", \"update\", \"read\"]\n}\n",
			t.Name, v.KVMount, path, DatabaseKey, v.KVMount, path, DatabaseKey)})
	}
	return out
}

// Role is a Kubernetes-auth role: its name and the parameters Vault stores for it.
type Role struct {
	Name   string
	Params map[string]any
}

// Roles bind each policy to exactly one ServiceAccount, by name and namespace, with the audience
// the tenant's SecretStore requests its tokens for.
func Roles(t *tenancyv1alpha1.Tenant, namespace string, v *config.Vault) []Role {
	role := func(name, sa string) Role {
		return Role{Name: name, Params: map[string]any{
			"bound_service_account_names":      []string{sa},
			"bound_service_account_namespaces": []string{namespace},
			"audience":                         v.Audience,
			"token_policies":                   []string{name},
			"token_ttl":                        int64(v.TokenTTL.Seconds()),
			"token_max_ttl":                    int64(v.TokenTTL.Seconds()),
		}}
	}
	out := []Role{role(ReaderName(t), ReaderServiceAccount)}
	if pushesDatabase(t) {
		out = append(out, role(PusherName(t), PusherServiceAccount))
	}
	return out
}

// ServiceAccounts are the identities the tenant's SecretStores log in to Vault with.
func ServiceAccounts(t *tenancyv1alpha1.Tenant, namespace string) []*corev1.ServiceAccount {
	names := []string{ReaderServiceAccount}
	if pushesDatabase(t) {
		names = append(names, PusherServiceAccount)
	}
	out := make([]*corev1.ServiceAccount, 0, len(names))
	for _, n := range names {
		out = append(out, &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: builders.ObjectMeta(t, namespace, n),
		})
	}
	return out
}

// SecretStores reach the tenant's Vault path as the reader, and as the pusher when it has a
// database.
func SecretStores(t *tenancyv1alpha1.Tenant, namespace string, v *config.Vault) []*externalsecrets.SecretStore {
	store := func(name, role, sa string) *externalsecrets.SecretStore {
		mount := v.KVMount
		s := &externalsecrets.SecretStore{
			TypeMeta:   metav1.TypeMeta{APIVersion: externalsecrets.GroupVersion.String(), Kind: "SecretStore"},
			ObjectMeta: builders.ObjectMeta(t, namespace, name),
			Spec: externalsecrets.SecretStoreSpec{Provider: &externalsecrets.Provider{Vault: &externalsecrets.VaultProvider{
				Server: v.Address, Path: &mount, Version: "v2",
				Auth: &externalsecrets.VaultAuth{Kubernetes: &externalsecrets.VaultKubernetesAuth{
					MountPath: v.KubernetesAuthMount, Role: role,
					ServiceAccountRef: &externalsecrets.ServiceAccountSelector{Name: sa, Audiences: []string{v.Audience}},
				}},
			}}},
		}
		if v.CABundle != "" {
			s.Spec.Provider.Vault.CABundle = []byte(v.CABundle)
		}
		return s
	}
	out := []*externalsecrets.SecretStore{store(ReaderStore, ReaderName(t), ReaderServiceAccount)}
	if pushesDatabase(t) {
		out = append(out, store(PusherStore, PusherName(t), PusherServiceAccount))
	}
	return out
}

// ExternalSecrets are one per spec.secrets item: the named properties of "<tenant path>/<remoteKey>",
// or all of them, into a Secret of the item's name.
func ExternalSecrets(t *tenancyv1alpha1.Tenant, namespace string, v *config.Vault) []*externalsecrets.ExternalSecret {
	if t.Spec.Secrets == nil {
		return nil
	}
	base := Path(t, v)
	var out []*externalsecrets.ExternalSecret
	for _, item := range t.Spec.Secrets.Items {
		out = append(out, readerSecret(t, namespace, item.Name, base+"/"+item.RemoteKey, "Owner", refresh(item.RefreshInterval), item.Properties))
	}
	return out
}

func refresh(d *metav1.Duration) *metav1.Duration {
	if d == nil {
		return &metav1.Duration{Duration: time.Hour}
	}
	return d.DeepCopy()
}

// BackupCredentials syncs the tenant's own object-store keys from "<tenant path>/<key>" into the
// Secret its ObjectStores name, when the platform gives each tenant its own (tenantCredentials).
func BackupCredentials(t *tenancyv1alpha1.Tenant, namespace string, cfg config.Config) *externalsecrets.ExternalSecret {
	if !database.UsesTenantCredentials(t, cfg) || cfg.Vault == nil {
		return nil
	}
	key := Path(t, cfg.Vault) + "/" + cfg.Database.Backup.TenantCredentials.Key()
	// Orphan: a database retained past its Tenant keeps archiving with these keys.
	return readerSecret(t, namespace, database.BackupCredentialsSecret, key, "Orphan", refresh(nil),
		[]string{database.BackupAccessKeyID, database.BackupSecretAccessKey})
}

// readerSecret is an ExternalSecret through the tenant's reader store: the named properties of key,
// or all of them, into the Secret name.
func readerSecret(t *tenancyv1alpha1.Tenant, namespace, name, key, policy string, every *metav1.Duration, properties []string) *externalsecrets.ExternalSecret {
	es := &externalsecrets.ExternalSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: externalsecrets.GroupVersion.String(), Kind: "ExternalSecret"},
		ObjectMeta: builders.ObjectMeta(t, namespace, name),
		Spec: externalsecrets.ExternalSecretSpec{
			SecretStoreRef:  externalsecrets.StoreRef{Name: ReaderStore, Kind: "SecretStore"},
			Target:          externalsecrets.ExternalSecretTarget{Name: name, CreationPolicy: policy},
			RefreshInterval: every,
		},
	}
	if len(properties) == 0 {
		es.Spec.DataFrom = []externalsecrets.ExternalSecretDataFrom{{Extract: &externalsecrets.RemoteRef{Key: key}}}
	}
	for _, p := range properties {
		es.Spec.Data = append(es.Spec.Data, externalsecrets.ExternalSecretData{
			SecretKey: p, RemoteRef: externalsecrets.RemoteRef{Key: key, Property: p},
		})
	}
	return es
}

// DatabasePush copies the database's credentials Secret (the single owner of the password), every
// key of it, into "<tenant path>/database". External Secrets Operator re-reads the Secret every
// refresh interval and writes Vault only when it differs, so a rotation reaches Vault within a
// minute without the operator ever handling the value. Deleting the PushSecret leaves the copy in
// Vault (the tenant's deletion policy decides its fate).
func DatabasePush(t *tenancyv1alpha1.Tenant, namespace string, v *config.Vault) *externalsecrets.PushSecret {
	if !pushesDatabase(t) {
		return nil
	}
	source := database.AppSecretName
	if t.Spec.Database.Mode == tenancyv1alpha1.DatabaseShared {
		source = database.SharedCredentialsName
	}
	return &externalsecrets.PushSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: externalsecrets.GroupVersionAlpha.String(), Kind: "PushSecret"},
		ObjectMeta: builders.ObjectMeta(t, namespace, DatabasePushName),
		Spec: externalsecrets.PushSecretSpec{
			SecretStoreRefs: []externalsecrets.StoreRef{{Name: PusherStore, Kind: "SecretStore"}},
			Selector:        externalsecrets.PushSecretSelector{Secret: &externalsecrets.SecretName{Name: source}},
			RefreshInterval: &metav1.Duration{Duration: time.Minute},
			DeletionPolicy:  "None",
			UpdatePolicy:    "Replace",
			Data: []externalsecrets.PushSecretData{{Match: externalsecrets.PushSecretMatch{
				RemoteRef: externalsecrets.PushSecretRemote{RemoteKey: Path(t, v) + "/" + DatabaseKey},
			}}},
		},
	}
}
