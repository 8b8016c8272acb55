package testenv

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestDeployedIdentityIsTheExemptOne builds config/default with kubectl's kustomize and checks that
// the ServiceAccount it deploys is the identity the admission policies exempt. If the two drift
// apart, the operator is refused its own labels in production.
func TestDeployedIdentityIsTheExemptOne(t *testing.T) {
	assets, err := Assets()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(assets, "kubectl"), "kustomize", filepath.Join(RepoRoot(), "config", "default")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/default: %v", err)
	}
	var accounts []string
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var obj struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Kind == "ServiceAccount" {
			accounts = append(accounts, "system:serviceaccount:"+obj.Metadata.Namespace+":"+obj.Metadata.Name)
		}
	}
	if len(accounts) != 1 || accounts[0] != OperatorUsername {
		t.Fatalf("config/default deploys %v; the admission policies exempt %s", accounts, OperatorUsername)
	}
	if !strings.Contains(string(out), "'"+OperatorUsername+"'") {
		t.Errorf("the rendered admission policy does not name %s", OperatorUsername)
	}
}
