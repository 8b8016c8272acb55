package secrets

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
	"github.com/tenantctl/tenant-operator/internal/test/vaultcheck"
)

// acceptedByTheCRD reads, from the generated Tenant CRD, the rules the apiserver applies to a
// Tenant's name (its CEL rules) and to spec.secrets.vaultPath (pattern and maxLength), so that this
// fuzz target draws only what admission accepts. FuzzAcceptedTenantBuildsAcceptedObjects asks the
// apiserver itself; this one runs the builders alone, millions of times.
func acceptedByTheCRD(t testing.TB) (name func(string) bool, vaultPath func(string) bool) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "tenancy.tenantctl.io_tenants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Validations []struct{ Rule string } `json:"x-kubernetes-validations"`
						Properties  struct {
							Spec struct {
								Properties struct {
									Secrets struct {
										Properties struct {
											VaultPath struct {
												Pattern   string `json:"pattern"`
												MaxLength int    `json:"maxLength"`
											} `json:"vaultPath"`
										} `json:"properties"`
									} `json:"secrets"`
								} `json:"properties"`
							} `json:"spec"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	var nameRules []*regexp.Regexp
	maxName := 0
	for _, v := range schema.Validations {
		if m := regexp.MustCompile(`^self\.metadata\.name\.matches\('([^']*)'\)$`).FindStringSubmatch(v.Rule); m != nil {
			nameRules = append(nameRules, regexp.MustCompile(m[1]))
		}
		if m := regexp.MustCompile(`^self\.metadata\.name\.size\(\) <= (\d+)$`).FindStringSubmatch(v.Rule); m != nil {
			maxName, _ = strconv.Atoi(m[1])
		}
	}
	vp := schema.Properties.Spec.Properties.Secrets.Properties.VaultPath
	if len(nameRules) == 0 || maxName == 0 || vp.Pattern == "" || vp.MaxLength == 0 {
		t.Fatalf("the CRD's rules were not found (name patterns %d, max %d, vaultPath %q/%d): the CRD changed shape", len(nameRules), maxName, vp.Pattern, vp.MaxLength)
	}
	pathRule := regexp.MustCompile(vp.Pattern)
	name = func(s string) bool {
		if s == "" || len(s) > maxName {
			return false
		}
		for _, r := range nameRules {
			if !r.MatchString(s) {
				return false
			}
		}
		return true
	}
	vaultPath = func(s string) bool { return s == "" || len(s) <= vp.MaxLength && pathRule.MatchString(s) }
	return name, vaultPath
}

// FuzzVaultPolicyStaysInTheTenantsPath: for any Tenant name and vaultPath admission accepts, and
// the operator's own Validate accepts (another tenant holding the default path of "other"), the
// tenant's Vault policies reach only its own path (the default "<prefix>/<tenant>", or an override
// outside the prefix), never a glob in it, never the prefix or another tenant's place in it; and
// its roles bind only its own ServiceAccounts in its own namespace.
func FuzzVaultPolicyStaysInTheTenantsPath(f *testing.F) {
	f.Add("acme", "", false)
	f.Add("acme", "tenants/acme", true)
	f.Add("acme", "teams/acme/prod", true)
	f.Add("acme", "tenants/other", false)
	f.Add("acme", "tenants", false)
	f.Add("acme", "tenantsx/acme", true)
	name, vaultPath := acceptedByTheCRD(f)
	v := vaultConfig()
	checked := 0
	f.Cleanup(func() {
		if fuzzing := flag.Lookup("test.fuzz"); (fuzzing == nil || fuzzing.Value.String() == "") && !f.Failed() && checked < 3 {
			f.Errorf("only %d seeds were accepted and checked: the target tests nothing", checked)
		}
	})
	f.Fuzz(func(t *testing.T, tenantName, override string, withDatabase bool) {
		if !name(tenantName) || !vaultPath(override) {
			return
		}
		var db *v1alpha1.DatabaseSpec
		if withDatabase {
			db = &v1alpha1.DatabaseSpec{}
		}
		tnt := tenant(&v1alpha1.SecretsSpec{VaultPath: override}, db)
		tnt.Name = tenantName
		others := map[string]string{"other": v.PathPrefix + "/other"}
		if tenantName == "other" {
			others = nil
		}
		if _, ok := Validate(tnt, v, others); !ok {
			return
		}
		checked++
		own := Path(tnt, v)
		var rules []string
		for _, p := range Policies(tnt, v) {
			rules = append(rules, p.Rules)
		}
		if outside := vaultcheck.OutsideOwnPath(tenantName, own, v, rules...); outside != "" {
			t.Fatal(outside)
		}
		if Overlaps(own, v.PathPrefix+"/other") && tenantName != "other" {
			t.Fatalf("tenant %q holds %q, which overlaps another tenant's", tenantName, own)
		}
		for _, r := range Roles(tnt, ns, v) {
			sas, _ := r.Params["bound_service_account_names"].([]string)
			nss, _ := r.Params["bound_service_account_namespaces"].([]string)
			if len(sas) != 1 || len(nss) != 1 || nss[0] != ns || strings.ContainsAny(sas[0], "*") {
				t.Fatalf("role %s binds %v in %v, want one ServiceAccount in %s", r.Name, sas, nss, ns)
			}
		}
	})
}
