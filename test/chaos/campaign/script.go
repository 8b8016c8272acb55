// Package campaign is the fault campaign of docs/reliability.md: a scripted workload of Tenants
// created, edited and deleted under both deletion policies, run once undisturbed and once under
// faults on a real control plane (kube-apiserver, etcd, kube-controller-manager's namespace and
// garbage-collector controllers), Vault, the External Secrets Operator and the operator binary,
// each its own process; then the end states compared object by object, and checked for duplicates,
// orphans and lost data. `make chaos` runs it at full size (test/chaos), `make test-e2e` a part.
//
// Nothing here stands in for a component, except that there is no CloudNativePG: the script's
// tenants have no database (the real cluster suite, test/cluster, runs databases).
package campaign

import (
	"fmt"
	"math/rand"
)

// action is one step of the script: what a platform engineer (or their GitOps tool) does to a
// tenant.
type action struct {
	kind   string // create, edit, delete
	tenant int
	// version of the tenant's spec after a create or an edit.
	version int
}

// round is what the platform does between two checks: a few actions, then (under faults) a fault.
type round []action

// script is the whole workload: tenants numbered 0..n-1, rounds of actions, deterministic in seed.
type script struct {
	tenants int
	rounds  []round
}

// newScript writes rounds rounds over tenants tenants. Every tenant is created in the first
// rounds; later each round takes one to three tenants and creates the absent ones again (a retained
// tenant is adopted back), edits or deletes the present ones. The last round leaves some tenants
// deleted under each policy, and some present.
func newScript(seed int64, tenants, rounds int) script {
	r := rand.New(rand.NewSource(seed))
	present := make([]bool, tenants)
	versions := make([]int, tenants)
	s := script{tenants: tenants}
	for i := 0; i < rounds; i++ {
		var rd round
		picked := map[int]bool{}
		for n := 1 + r.Intn(3); n > 0; n-- {
			t := r.Intn(tenants)
			if i < (tenants+2)/3 { // the first rounds create everyone, three at a time
				t = (3*i + n - 1) % tenants
			}
			if picked[t] {
				continue
			}
			picked[t] = true
			switch {
			case !present[t]:
				versions[t]++
				rd = append(rd, action{kind: "create", tenant: t, version: versions[t]})
				present[t] = true
			case r.Intn(10) < 3:
				rd = append(rd, action{kind: "delete", tenant: t})
				present[t] = false
			default:
				versions[t]++
				rd = append(rd, action{kind: "edit", tenant: t, version: versions[t]})
			}
		}
		s.rounds = append(s.rounds, rd)
	}
	return s
}

// tenantName is tenant t's name in the run with the given prefix.
func tenantName(prefix string, t int) string { return fmt.Sprintf("%s-t%02d", prefix, t) }

// deletionPolicy alternates between the two policies.
func deletionPolicy(t int) string {
	if t%2 == 0 {
		return "Delete"
	}
	return "Retain"
}

// withSecrets says whether tenant t takes a Secret from its Vault path.
func withSecrets(t int) bool { return t%3 == 0 }

// tenantManifest is tenant t's Tenant at a spec version: each version changes its quota, its
// namespace labels and its owners, so that an edit touches every area the operator writes.
func tenantManifest(prefix string, t, version int) string {
	cpu := []string{"2", "4", "8"}[version%3]
	spec := fmt.Sprintf(`  deletionPolicy: %s
  owners:
  - {kind: User, name: "oidc:owner-%d@example.com"}
  - {kind: Group, name: "oidc:team-%d"}
  namespace:
    labels: {tier: "v%d"}
  quota:
    hard: {requests.cpu: "%s", pods: "20"}
`, deletionPolicy(t), t, version%2, version%4, cpu)
	if withSecrets(t) {
		spec += "  secrets:\n    items:\n    - {name: api-credentials, remoteKey: api, refreshInterval: 5s}\n"
	}
	return fmt.Sprintf("apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: %s\nspec:\n%s", tenantName(prefix, t), spec)
}
