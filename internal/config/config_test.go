package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	cases := map[string]struct {
		file    string // contents of the configuration file; "" means no file
		wantErr string // fragment of the expected error; "" means the file is valid
		check   func(t *testing.T, c Config)
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
			file:    "namespacePrefx: cust-\n",
			wantErr: `unknown field "namespacePrefx"`,
		},
		"a prefix too long for the longest tenant name": {
			file:    "namespacePrefix: " + strings.Repeat("p", 24) + "\n",
			wantErr: "at most 23 characters",
		},
		"a prefix that is not a DNS label start": {
			file:    "namespacePrefix: Tenant_\n",
			wantErr: "namespacePrefix",
		},
		"a Vault gets its defaults": {
			file: "vault:\n  address: https://vault.example:8200\n  auth: {method: kubernetes, role: tenant-operator}\n",
			check: func(t *testing.T, c Config) {
				v := c.Vault
				if v.KVMount != "secret" || v.PathPrefix != "tenants" || v.Audience != "vault" || v.ResyncInterval != "5m" || v.TokenTTL != "15m" {
					t.Errorf("unexpected Vault defaults: %+v", v)
				}
			},
		},
		"a Vault resync interval that is not a duration": {
			file:    "vault:\n  address: https://vault.example:8200\n  resyncInterval: often\n  auth: {method: kubernetes, role: tenant-operator}\n",
			wantErr: `vault.resyncInterval "often"`,
		},
		"a Vault token method without its Secret": {
			file:    "vault:\n  address: https://vault.example:8200\n  auth: {method: token}\n",
			wantErr: "vault.auth.tokenSecret",
		},
		"a tenant role bound to cluster-admin": {
			file:    "roles:\n  admin: cluster-admin\n",
			wantErr: "roles.admin",
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
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
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
