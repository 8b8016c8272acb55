package secrets

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/golden"
)

const ns = "tenant-acme-corp"

func vaultConfig() *config.Vault {
	c, err := config.Parse([]byte("vault:\n  address: https://vault.platform.svc:8200\n  auth: {method: kubernetes, role: tenant-operator}\n"))
	if err != nil {
		panic(err)
	}
	return c.Vault
}

func tenant(secrets *tenancyv1alpha1.SecretsSpec, db *tenancyv1alpha1.DatabaseSpec) *tenancyv1alpha1.Tenant {
	return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme-corp", UID: "0000-acme"},
		Spec: tenancyv1alpha1.TenantSpec{Secrets: secrets, Database: db}}
}

func items() *tenancyv1alpha1.SecretsSpec {
	return &tenancyv1alpha1.SecretsSpec{Items: []tenancyv1alpha1.SecretItem{
		{Name: "stripe", RemoteKey: "payments/stripe", Properties: []string{"api-key", "webhook-secret"},
			RefreshInterval: &metav1.Duration{Duration: 5 * time.Minute}},
		{Name: "app-config", RemoteKey: "config"},
	}}
}

// everything is what the controller applies for a tenant, in the order it applies it, plus the
// Vault policies and roles as data.
func everything(t *tenancyv1alpha1.Tenant, v *config.Vault) []any {
	var objs []any
	for _, p := range Policies(t, v) {
		objs = append(objs, p)
	}
	for _, r := range Roles(t, ns, v) {
		objs = append(objs, r)
	}
	for _, sa := range ServiceAccounts(t, ns) {
		objs = append(objs, sa)
	}
	for _, s := range SecretStores(t, ns, v) {
		objs = append(objs, s)
	}
	for _, es := range ExternalSecrets(t, ns, v) {
		objs = append(objs, es)
	}
	if ps := DatabasePush(t, ns, v); ps != nil {
		objs = append(objs, ps)
	}
	return objs
}

func TestGolden(t *testing.T) {
	withCA := vaultConfig()
	withCA.CABundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	cases := map[string]struct {
		tenant *tenancyv1alpha1.Tenant
		vault  *config.Vault
	}{
		"items-only":         {tenant: tenant(items(), nil), vault: vaultConfig()},
		"dedicated-database": {tenant: tenant(nil, &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseDedicated}), vault: vaultConfig()},
		"shared-database":    {tenant: tenant(items(), &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared}), vault: withCA},
		"own-vault-path":     {tenant: tenant(&tenancyv1alpha1.SecretsSpec{VaultPath: "legacy/acme", Items: items().Items}, nil), vault: vaultConfig()},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			golden.Assert(t, name, everything(tc.tenant, tc.vault)...)
		})
	}
}

// The reader policy is the segregation boundary: it must name the tenant's own path and nothing
// wider, whatever else the golden files say.
func TestReaderPolicyGrantsOnlyTheTenantsPath(t *testing.T) {
	v := vaultConfig()
	for _, tnt := range []*tenancyv1alpha1.Tenant{tenant(items(), nil), tenant(&tenancyv1alpha1.SecretsSpec{VaultPath: "legacy/acme"}, nil)} {
		reader := Policies(tnt, v)[0]
		var paths []string
		for _, line := range strings.Split(reader.Rules, "\n") {
			if strings.HasPrefix(line, "path ") {
				paths = append(paths, strings.Fields(line)[1])
			}
		}
		want := `"secret/data/` + Path(tnt, v) + `/*"`
		if len(paths) != 1 || paths[0] != want {
			t.Errorf("reader policy of path %s grants %v, want exactly [%s]", Path(tnt, v), paths, want)
		}
		if !strings.Contains(reader.Rules, `capabilities = ["read"]`) || strings.Contains(reader.Rules, "update") {
			t.Errorf("reader policy grants more than read:\n%s", reader.Rules)
		}
	}
}

// Roles bind by ServiceAccount name and namespace, never by a wildcard or a label.
func TestRolesBindOneServiceAccountInOneNamespace(t *testing.T) {
	v := vaultConfig()
	for _, r := range Roles(tenant(items(), &tenancyv1alpha1.DatabaseSpec{}), ns, v) {
		names := r.Params["bound_service_account_names"].([]string)
		namespaces := r.Params["bound_service_account_namespaces"].([]string)
		if len(names) != 1 || len(namespaces) != 1 || namespaces[0] != ns || strings.ContainsAny(names[0]+namespaces[0], "*") {
			t.Errorf("role %s binds %v in %v", r.Name, names, namespaces)
		}
		if _, bySelector := r.Params["bound_service_account_namespace_selector"]; bySelector {
			t.Errorf("role %s binds namespaces by a label selector", r.Name)
		}
		if r.Params["audience"] != "vault" {
			t.Errorf("role %s has audience %v, want the configured one", r.Name, r.Params["audience"])
		}
	}
}

func TestValidate(t *testing.T) {
	v := vaultConfig()
	cases := map[string]struct {
		vaultPath string            // spec.secrets.vaultPath
		others    map[string]string // other tenants' paths
		vault     *config.Vault
		wantErr   string // fragment of the refusal; "" when acceptable
	}{
		"the default path":                     {vault: v, others: map[string]string{"globex": "tenants/globex"}},
		"a path of its own outside the prefix": {vault: v, vaultPath: "legacy/acme"},
		"its own path spelt out":               {vault: v, vaultPath: "tenants/acme-corp"},
		"no Vault configured":                  {wantErr: "no Vault"},
		"another tenant's path under the prefix": {vault: v, vaultPath: "tenants/globex",
			wantErr: `spec.secrets.vaultPath: "tenants/globex" is inside "tenants/"`},
		"the whole prefix":                    {vault: v, vaultPath: "tenants", wantErr: "is inside"},
		"a path holding another tenant's":     {vault: v, vaultPath: "legacy", others: map[string]string{"initech": "legacy/initech"}, wantErr: "overlaps the Vault path of tenant initech"},
		"a path inside another tenant's":      {vault: v, vaultPath: "legacy/initech/acme", others: map[string]string{"initech": "legacy/initech"}, wantErr: "overlaps the Vault path of tenant initech"},
		"a sibling that only shares a prefix": {vault: v, vaultPath: "legacy/acme", others: map[string]string{"acme2": "legacy/acme2"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := &tenancyv1alpha1.SecretsSpec{VaultPath: tc.vaultPath}
			msg, ok := Validate(tenant(spec, nil), tc.vault, tc.others)
			if (tc.wantErr == "") != ok {
				t.Fatalf("Validate = (%q, %v)", msg, ok)
			}
			if !strings.Contains(msg, tc.wantErr) {
				t.Errorf("message %q does not contain %q", msg, tc.wantErr)
			}
		})
	}
}

func TestHeld(t *testing.T) {
	v := vaultConfig()
	cases := map[string]struct {
		secrets  *tenancyv1alpha1.SecretsSpec  // spec.secrets
		database *tenancyv1alpha1.DatabaseSpec // spec.database
		vault    *config.Vault
		want     string // the path held; "" when none
	}{
		"no Vault configured":                  {secrets: &tenancyv1alpha1.SecretsSpec{}},
		"nothing asked of Vault":               {vault: v},
		"the default path":                     {vault: v, secrets: &tenancyv1alpha1.SecretsSpec{}, want: "tenants/acme-corp"},
		"a database alone pushes to Vault":     {vault: v, database: &tenancyv1alpha1.DatabaseSpec{}, want: "tenants/acme-corp"},
		"a path of its own outside the prefix": {vault: v, secrets: &tenancyv1alpha1.SecretsSpec{VaultPath: "legacy/acme"}, want: "legacy/acme"},
		// A tenant refused for squatting inside the prefix keeps nobody out of the path it names.
		"another tenant's place under the prefix": {vault: v, secrets: &tenancyv1alpha1.SecretsSpec{VaultPath: "tenants/globex"}},
		"the whole prefix":                        {vault: v, secrets: &tenancyv1alpha1.SecretsSpec{VaultPath: "tenants"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := Held(tenant(tc.secrets, tc.database), tc.vault)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("Held = (%q, %v), want %q", got, ok, tc.want)
			}
		})
	}
}

func TestOverlaps(t *testing.T) {
	cases := map[string]struct {
		a, b string // two tenants' paths
		want bool
	}{
		"the same path":                 {a: "legacy/acme", b: "legacy/acme", want: true},
		"one inside the other":          {a: "legacy", b: "legacy/acme", want: true},
		"the other inside the one":      {a: "legacy/acme/x", b: "legacy/acme", want: true},
		"siblings":                      {a: "legacy/acme", b: "legacy/globex"},
		"siblings sharing a name start": {a: "legacy/acme", b: "legacy/acme2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Overlaps(tc.a, tc.b); got != tc.want {
				t.Errorf("Overlaps(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestPrecedes(t *testing.T) {
	at := func(name string, sec int64) *tenancyv1alpha1.Tenant {
		return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(sec, 0)}}
	}
	cases := map[string]struct {
		a, b *tenancyv1alpha1.Tenant
		want bool // a came first
	}{
		"created earlier":                      {a: at("zeta", 100), b: at("alpha", 200), want: true},
		"created later":                        {a: at("alpha", 200), b: at("zeta", 100)},
		"the same second: the first name wins": {a: at("alpha", 100), b: at("zeta", 100), want: true},
		"the same second: the later name":      {a: at("zeta", 100), b: at("alpha", 100)},
		"itself":                               {a: at("alpha", 100), b: at("alpha", 100)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Precedes(tc.a, tc.b); got != tc.want {
				t.Errorf("Precedes(%s@%v, %s@%v) = %v, want %v", tc.a.Name, tc.a.CreationTimestamp, tc.b.Name, tc.b.CreationTimestamp, got, tc.want)
			}
		})
	}
}

// With tenantCredentials, a tenant's object-store keys come from its own Vault path, through its
// own reader store, into the Secret its ObjectStore names; a tenant without backups gets none.
func TestBackupCredentialsComeFromTheTenantsOwnPath(t *testing.T) {
	cfg := config.Default()
	cfg.Vault = vaultConfig()
	cfg.Database.Backup = &config.BackupTemplate{
		ObjectStore:       map[string]any{"destinationPath": "s3://tenant-{tenant}/"},
		TenantCredentials: &config.BackupCredentials{},
	}
	withBackups := tenant(nil, &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseDedicated,
		Backup: &tenancyv1alpha1.BackupSpec{Schedule: "@daily"}})
	es := BackupCredentials(withBackups, ns, cfg)
	if es == nil {
		t.Fatal("no ExternalSecret for a tenant with backups and tenantCredentials")
	}
	if es.Spec.SecretStoreRef.Name != ReaderStore || es.Spec.Target.Name != database.BackupCredentialsSecret {
		t.Errorf("store %q, target %q; want the tenant's reader store into %q", es.Spec.SecretStoreRef.Name, es.Spec.Target.Name, database.BackupCredentialsSecret)
	}
	for _, d := range es.Spec.Data {
		if d.RemoteRef.Key != Path(withBackups, cfg.Vault)+"/backup" {
			t.Errorf("%s is read from %q, want the tenant's own %q", d.SecretKey, d.RemoteRef.Key, Path(withBackups, cfg.Vault)+"/backup")
		}
	}
	if len(es.Spec.Data) != 2 || es.Spec.Data[0].SecretKey != database.BackupAccessKeyID || es.Spec.Data[1].SecretKey != database.BackupSecretAccessKey {
		t.Errorf("data %+v, want the access key ID and the secret access key", es.Spec.Data)
	}
	if got := BackupCredentials(tenant(nil, &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseDedicated}), ns, cfg); got != nil {
		t.Errorf("a tenant without backups gets %s, want nothing", got.Name)
	}
	cfg.Database.Backup.TenantCredentials = nil
	if got := BackupCredentials(withBackups, ns, cfg); got != nil {
		t.Errorf("with credentials in the template, a tenant gets %s, want nothing", got.Name)
	}
}
