package chart

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/golden"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestInstallUpgradeUninstall installs the chart into a bare control plane (no CRDs beforehand:
// the chart brings them), then checks what a platform engineer would: the CRDs are served, the
// roles and admission objects exist, and the operator's ServiceAccount can do exactly what the
// generated role allows (kubectl auth can-i --list, against a snapshot). An upgrade leaves an
// existing Tenant untouched; an uninstall keeps the CRDs and the Tenant. No operator pod runs here
// (no kubelet): this tests what the chart installs, not the operator's behaviour.
func TestInstallUpgradeUninstall(t *testing.T) {
	ctx := context.Background()
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	admin, err := env.AddUser(envtest.User{Name: "platform-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, tenancyv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	install := func(verb string, sets ...string) {
		t.Helper()
		args := append([]string{verb, "tenant-operator", chart, "--kubeconfig", kubeconfig,
			"--namespace", "tenant-operator-system", "--create-namespace"}, setArgs(sets)...)
		if out, err := helm(t, args...); err != nil {
			t.Fatalf("helm %s: %v\n%s", verb, err, out)
		}
	}
	install("install")

	for _, name := range []string{"tenants.tenancy.tenantctl.io", "rolebindings.tenancy.tenantctl.io"} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		testenv.Eventually(t, wait, func() error { return c.Get(ctx, client.ObjectKey{Name: name}, crd) })
	}
	for _, obj := range []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "tenant-admin"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "tenant-operator-manager"}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "tenant-operator-validating-webhook-configuration"}},
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "tenant-deletion-protection"}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "tenant-deletion-protection"}},
	} {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Errorf("after install: %v", err)
		}
	}

	// What the operator's ServiceAccount may do, as kubectl reports it.
	kubectl := exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kubeconfig, "auth", "can-i", "--list",
		"--namespace", "tenant-acme", "--as", "system:serviceaccount:tenant-operator-system:tenant-operator-controller-manager")
	out, err := kubectl.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl auth can-i --list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, verb := range []string{"escalate", "impersonate", "[*]"} {
			if strings.Contains(line, verb) {
				t.Errorf("the operator may %s: %s", verb, line)
			}
		}
	}
	golden.Assert(t, "can-i", strings.Split(strings.TrimSpace(string(out)), "\n"))

	// A Tenant exists; an upgrade with other values leaves it as it was.
	tenant := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	if err := c.Create(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	install("upgrade", "replicaCount=3", "concurrency=8")
	after := &tenancyv1alpha1.Tenant{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(tenant), after); err != nil || after.ResourceVersion != tenant.ResourceVersion {
		t.Errorf("the upgrade changed the Tenant (err %v, resourceVersion %s -> %s)", err, tenant.ResourceVersion, after.ResourceVersion)
	}

	// Uninstall keeps the CRDs, and with them the Tenant.
	if out, err := helm(t, "uninstall", "tenant-operator", "--kubeconfig", kubeconfig, "--namespace", "tenant-operator-system"); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(tenant), after); err != nil {
		t.Errorf("after uninstall the Tenant is gone: %v", err)
	}
}
