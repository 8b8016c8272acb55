package controllers

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/tenantctl/tenant-operator/internal/test/golden"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestOperatorRoleSnapshot pins the operator's own ClusterRole (config/rbac/role.yaml, generated
// from the RBAC markers). It fails when the role grows or changes: review the change, then
// `go test ./controllers/ -run Snapshot -update`. Whatever the snapshot says, the role never
// holds escalate, impersonate or a wildcard, and binds only the tenant roles, by name.
func TestOperatorRoleSnapshot(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatal(err)
	}
	tenantRoles := map[string]bool{"tenant-admin": true, "tenant-developer": true, "tenant-viewer": true}
	var lines []string
	for _, r := range role.Rules {
		for _, verb := range r.Verbs {
			switch verb {
			case "escalate", "impersonate", "*":
				t.Errorf("the operator holds %q on %v %v", verb, r.APIGroups, r.Resources)
			case "bind":
				if len(r.ResourceNames) == 0 {
					t.Errorf("the operator may bind any %v", r.Resources)
				}
				for _, n := range r.ResourceNames {
					if !tenantRoles[n] {
						t.Errorf("the operator may bind %s, which is not a tenant role", n)
					}
				}
			}
		}
		for _, s := range append(append([]string{}, r.APIGroups...), r.Resources...) {
			if s == "*" {
				t.Errorf("wildcard in rule %v", r)
			}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				line := g + "/" + res + ": " + strings.Join(r.Verbs, ",")
				if len(r.ResourceNames) > 0 {
					line += " (only " + strings.Join(r.ResourceNames, ",") + ")"
				}
				lines = append(lines, line)
			}
		}
	}
	sort.Strings(lines)
	golden.Assert(t, "manager-role", lines)
}
