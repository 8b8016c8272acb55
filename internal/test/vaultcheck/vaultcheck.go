// Package vaultcheck is the fuzz targets' shared check that a tenant's Vault policies stay in the
// tenant's own path (FuzzVaultPolicyStaysInTheTenantsPath, FuzzAcceptedTenantBuildsAcceptedObjects).
package vaultcheck

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tenantctl/tenant-operator/internal/config"
)

// policyPath is the path of each rule of a Vault ACL policy.
var policyPath = regexp.MustCompile(`(?m)^path "([^"]*)"`)

// OutsideOwnPath says how tenant's path own (secrets.Path) or one of its policies' rules
// (secrets.Policies) reaches outside the tenant's own path, or "" if none does: the path must be
// the default "<prefix>/<tenant>" or lie outside the prefix, and hold no glob, quote or parent
// reference; each policy must be path rules only, each inside the path (data or metadata) with no
// glob but a trailing "*". (It takes strings, not the builders, so the builders' own package can
// use it.)
func OutsideOwnPath(tenant, own string, v *config.Vault, policies ...string) string {
	if own != v.PathPrefix+"/"+tenant && (own == v.PathPrefix || strings.HasPrefix(own, v.PathPrefix+"/")) {
		return fmt.Sprintf("tenant %q's path %q is another place in the platform's prefix %q", tenant, own, v.PathPrefix)
	}
	if strings.ContainsAny(own, "*+\"\n") || strings.Contains(own, "..") {
		return fmt.Sprintf("tenant %q's path %q holds a glob, a quote or a parent reference", tenant, own)
	}
	for _, rules := range policies {
		paths := policyPath.FindAllStringSubmatch(rules, -1)
		if len(paths) == 0 || strings.Count(rules, "path ") != len(paths) || strings.Count(rules, "{") != len(paths) {
			return fmt.Sprintf("a policy of tenant %q is not only path rules:\n%s", tenant, rules)
		}
		for _, m := range paths {
			rest, inside := strings.CutPrefix(m[1], v.KVMount+"/data/"+own+"/")
			if !inside {
				rest, inside = strings.CutPrefix(m[1], v.KVMount+"/metadata/"+own+"/")
			}
			if !inside || (rest != "*" && strings.ContainsAny(rest, "*+")) {
				return fmt.Sprintf("a policy of tenant %q reaches %q, outside its own path %q:\n%s", tenant, m[1], own, rules)
			}
		}
	}
	return ""
}
