package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestLoad(t *testing.T) {
	cases := map[string]struct {
		file     string   // contents of the configuration file; "" means no file
		wantErrs []string // fragments the error must hold, each; none means the file is valid
		check    func(t *testing.T, c Config)
	}{
		"no file gives the defaults": {
			check: func(t *testing.T, c Config) {
				if c.NamespacePrefix != "tenant-" || c.Roles["admin"] != "tenant-admin" || len(c.DefaultQuota) == 0 {
					t.Errorf("unexpected defaults: %+v", c)
				}
			},
		},
		"a file overrides the defaults it names": {
			file: "namespacePrefix: cust-\ntrustedNamespaces: [monitoring]\n",
			check: func(t *testing.T, c Config) {
				if c.NamespacePrefix != "cust-" || c.TrustedNamespaces[0] != "monitoring" || c.Roles["viewer"] != "tenant-viewer" {
					t.Errorf("unexpected configuration: %+v", c)
				}
			},
		},
		"a misspelt field is an error, not a silent default": {
			file:     "namespacePrefx: cust-\n",
			wantErrs: []string{`unknown field "namespacePrefx"`},
		},
		"a prefix too long for the longest tenant name": {
			file:     "namespacePrefix: " + strings.Repeat("p", 24) + "\n",
			wantErrs: []string{"at most 23 characters"},
		},
		"a prefix that is not a DNS label start": {
			file:     "namespacePrefix: Tenant_\n",
			wantErrs: []string{"namespacePrefix"},
		},
		"a Vault gets its defaults": {
			file: "vault:\n  address: https://vault.example:8200\n  auth: {method: kubernetes, role: tenant-operator}\n",
			check: func(t *testing.T, c Config) {
				v := c.Vault
				if v.KVMount != "secret" || v.PathPrefix != "tenants" || v.Audience != "vault" || fmt.Sprint(v.ResyncInterval) != "5m" || fmt.Sprint(v.TokenTTL) != "15m" {
					t.Errorf("unexpected Vault defaults: %+v", v)
				}
			},
		},
		"a Vault resync interval that is not a duration": {
			file:     "vault:\n  address: https://vault.example:8200\n  resyncInterval: often\n  auth: {method: kubernetes, role: tenant-operator}\n",
			wantErrs: []string{`vault.resyncInterval "often"`},
		},
		"every duration that is not one is refused, each by its field": {
			file: "maxGrantDuration: soon\nvault:\n  address: https://vault.example:8200\n  tokenTTL: 0s\n  resyncInterval: 5\n" +
				"  auth: {method: kubernetes, role: tenant-operator}\n",
			wantErrs: []string{`maxGrantDuration "soon"`, `vault.tokenTTL "0s"`, `vault.resyncInterval "5"`},
		},
		"a negative grant duration": {
			file:     "maxGrantDuration: -1h\n",
			wantErrs: []string{`maxGrantDuration "-1h"`},
		},
		"roles a file gives replace the default roles": {
			file: "roles: {viewer: tenant-viewer}\n",
			check: func(t *testing.T, c Config) {
				if want := map[string]string{"viewer": "tenant-viewer"}; !reflect.DeepEqual(c.Roles, want) {
					t.Errorf("roles: %v, want exactly %v", c.Roles, want)
				}
			},
		},
		"per-tenant backup credentials without a Vault, next to shared ones, and a CA that is not one": {
			file: "database:\n  imageRepository: ghcr.io/cloudnative-pg/postgresql\n  backup:\n" +
				"    objectStore: {destinationPath: 's3://tenant-{tenant}/', s3Credentials: {}, endpointCA: {}}\n" +
				"    tenantCredentials: {}\n    endpointCA: not a certificate\n",
			wantErrs: []string{"s3Credentials must be left empty with tenantCredentials", "tenantCredentials needs vault",
				"objectStore.endpointCA must be left empty", "endpointCA must be a PEM certificate"},
		},
		"per-tenant backup credentials default to the key backup": {
			file: "database:\n  imageRepository: ghcr.io/cloudnative-pg/postgresql\n  backup:\n" +
				"    objectStore: {destinationPath: 's3://tenant-{tenant}/'}\n    tenantCredentials: {}\n" +
				"vault:\n  address: https://vault.example:8200\n  auth: {method: kubernetes, role: tenant-operator}\n",
			check: func(t *testing.T, c Config) {
				if got := c.Database.Backup.TenantCredentials.Key(); got != "backup" {
					t.Errorf("tenantCredentials key %q, want backup", got)
				}
			},
		},
		"platform egress: a rule without destinations would open egress to everything": {
			file:     "platformEgress:\n- to: [{ipBlock: {cidr: 10.0.0.1/32}}]\n  ports: [{port: 6443}]\n- ports: [{port: 443}]\n",
			wantErrs: []string{"platformEgress[1].to must name the destinations"},
		},
		"platform egress is read as NetworkPolicy egress rules": {
			file: "platformEgress:\n- to: [{ipBlock: {cidr: 10.0.0.1/32}}]\n  ports: [{protocol: TCP, port: 6443}]\n",
			check: func(t *testing.T, c Config) {
				if len(c.PlatformEgress) != 1 || c.PlatformEgress[0].To[0].IPBlock.CIDR != "10.0.0.1/32" || c.PlatformEgress[0].Ports[0].Port.IntValue() != 6443 {
					t.Errorf("platformEgress: %+v", c.PlatformEgress)
				}
			},
		},
		"no roles at all": {
			file:     "roles: {}\n",
			wantErrs: []string{"roles must allow at least one tenant role"},
		},
		"a default quota a file gives replaces the default quota": {
			file: "defaultQuota: {pods: \"10\"}\n",
			check: func(t *testing.T, c Config) {
				want := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}
				if !equalResources(c.DefaultQuota, want) {
					t.Errorf("defaultQuota: %v, want exactly %v", c.DefaultQuota, want)
				}
			},
		},
		"default limits a file gives replace the defaults they name, and only those": {
			file: "defaultLimits:\n  default: {cpu: \"1\"}\n",
			check: func(t *testing.T, c Config) {
				want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
				if !equalResources(c.DefaultLimits.Default, want) {
					t.Errorf("defaultLimits.default: %v, want exactly %v", c.DefaultLimits.Default, want)
				}
				if d := Default(); !equalResources(c.DefaultLimits.DefaultRequest, d.DefaultLimits.DefaultRequest) {
					t.Errorf("defaultLimits.defaultRequest, left out: %v, want the default %v", c.DefaultLimits.DefaultRequest, d.DefaultLimits.DefaultRequest)
				}
			},
		},
		"a list a file gives replaces the default list": {
			file: "database: {allowedParameters: [work_mem]}\n",
			check: func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c.Database.AllowedParameters, []string{"work_mem"}) {
					t.Errorf("database.allowedParameters: %v, want exactly [work_mem]", c.Database.AllowedParameters)
				}
				if c.Database.ImageRepository != Default().Database.ImageRepository {
					t.Errorf("database.imageRepository, left out: %q, want the default", c.Database.ImageRepository)
				}
			},
		},
		"fields a file leaves out keep their defaults": {
			file: "namespacePrefix: cust-\n",
			check: func(t *testing.T, c Config) {
				d := Default()
				if !reflect.DeepEqual(c.Roles, d.Roles) || !equalResources(c.DefaultQuota, d.DefaultQuota) ||
					!equalResources(c.DefaultLimits.Default, d.DefaultLimits.Default) ||
					!equalResources(c.DefaultLimits.DefaultRequest, d.DefaultLimits.DefaultRequest) ||
					!reflect.DeepEqual(c.Database, d.Database) || c.MaxGrantDuration != d.MaxGrantDuration {
					t.Errorf("configuration: %+v\nwant the defaults but for namespacePrefix: %+v", c, d)
				}
			},
		},
		"a Vault token method without its Secret": {
			file:     "vault:\n  address: https://vault.example:8200\n  auth: {method: token}\n",
			wantErrs: []string{"vault.auth.tokenSecret"},
		},
		"a tenant role bound to cluster-admin": {
			file:     "roles:\n  admin: cluster-admin\n",
			wantErrs: []string{"roles.admin"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(path)
			if len(tc.wantErrs) > 0 {
				for _, want := range tc.wantErrs {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("want an error containing %q, got %v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// equalResources compares quantities by value ("1" and "1000m" are equal).
func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, qa := range a {
		if qb, ok := b[name]; !ok || qa.Cmp(qb) != 0 {
			return false
		}
	}
	return true
}
