//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// A Tenant and a grant kept in Git, applied as a GitOps tool applies them (server-side, its own
// field manager), become Ready; the grant passes the operator's admission webhook on the way, as
// served by the operator with the certificate it issued for itself.
func TestTenantFromGitBecomesReady(t *testing.T) {
	sample := filepath.Join(testenv.RepoRoot(), "config", "samples", "tenancy_v1alpha1_tenant_minimal.yaml")
	t.Cleanup(func() { removeTenant(t, "globex") }) // the sample's name; no other test uses it
	kubectl(t, "", "apply", "--server-side", "--field-manager=flux", "-f", sample)
	kubectl(t, "", "wait", "tenant/globex", "--for=condition=Ready", "--timeout=90s")

	t.Cleanup(func() {
		kubectl(t, "", "delete", "rolebindings.tenancy.tenantctl.io", "dana-viewer", "-n", "tenant-globex", "--ignore-not-found")
	})
	kubectl(t, `apiVersion: tenancy.tenantctl.io/v1alpha1
kind: RoleBinding
metadata:
  name: dana-viewer
  namespace: tenant-globex
spec:
  role: viewer
  subjects:
  - kind: User
    name: "oidc:dana@globex.example"
  reason: "CHG-7: read-only access for the auditors"
`, "apply", "--server-side", "--field-manager=flux", "-f", "-")
	kubectl(t, "", "wait", "rolebindings.tenancy.tenantctl.io/dana-viewer", "-n", "tenant-globex", "--for=condition=Ready", "--timeout=60s")

	// The webhook is live: a grant of a role that does not exist is refused at admission.
	out, err := stack.Kubectl(t.Context(), `apiVersion: tenancy.tenantctl.io/v1alpha1
kind: RoleBinding
metadata:
  name: everything
  namespace: tenant-globex
spec:
  role: cluster-admin
  subjects:
  - kind: User
    name: "oidc:dana@globex.example"
`, "apply", "--server-side", "-f", "-")
	if err == nil {
		t.Fatalf("a cluster-admin grant was admitted:\n%s", out)
	}
	if want := `spec.role: Unsupported value: "cluster-admin"`; !strings.Contains(out, want) {
		t.Fatalf("refused without naming the reason %q:\n%s", want, out)
	}
}
