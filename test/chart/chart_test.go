// Package chart tests charts/tenant-operator with the real helm CLI (v4, built from source through
// the Go module proxy by `make components`): lint, the schema's refusals, rendering of the
// main value combinations, and a real install, upgrade and uninstall into a control plane.
package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const wait = 30 * time.Second

var (
	helmBin string
	chart   = filepath.Join(testenv.RepoRoot(), "charts", "tenant-operator")
)

func TestMain(m *testing.M) {
	var err error
	if helmBin, err = testenv.ComponentBinary("helm"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// helm runs the helm CLI with its caches in a temporary home.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.CommandContext(context.Background(), helmBin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// render is helm template with the given --set values, as objects keyed "Kind/name".
func render(t *testing.T, sets ...string) map[string]*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "tenant-operator", chart, "--namespace", "tenant-operator-system"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", sets, err, out)
	}
	objs := map[string]*unstructured.Unstructured{}
	for _, doc := range strings.Split(out, "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if u.GetKind() == "" {
			continue
		}
		objs[u.GetKind()+"/"+u.GetName()] = u
	}
	return objs
}

func TestLint(t *testing.T) {
	for _, sets := range [][]string{nil, {"webhook.certificates=cert-manager", "metrics.serviceMonitor.enabled=true"}} {
		args := append([]string{"lint", "--strict", chart}, setArgs(sets)...)
		if out, err := helm(t, args...); err != nil {
			t.Errorf("helm lint %v: %v\n%s", sets, err, out)
		}
	}
}

func setArgs(sets []string) []string {
	var out []string
	for _, s := range sets {
		out = append(out, "--set", s)
	}
	return out
}

func TestSchemaRefusesMistakes(t *testing.T) {
	cases := map[string]struct{ set, fragment string }{
		"a misspelt value":            {"replicaCont=3", "replicaCont"},
		"an unknown certificate mode": {"webhook.certificates=vault", "certificates"},
		"zero replicas":               {"replicaCount=0", "replicaCount"},
		"a misspelt operator setting": {"config.namespacePrefx=x", "namespacePrefx"},
		"a namespace prefix too long": {"config.namespacePrefix=" + strings.Repeat("a", 30), "namespacePrefix"},
		"a port out of range":         {"webhook.port=70000", "port"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, "template", "x", chart, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s rendered; want a schema error", tc.set)
			}
			if !strings.Contains(out, tc.fragment) {
				t.Errorf("the error does not name %q:\n%s", tc.fragment, out)
			}
		})
	}
}

func TestRenderDefaults(t *testing.T) {
	objs := render(t)
	dep := objs["Deployment/tenant-operator"]
	if dep == nil {
		t.Fatalf("no Deployment; rendered %d objects", len(objs))
	}
	if r, _, _ := unstructured.NestedFieldNoCopy(dep.Object, "spec", "replicas"); fmt.Sprint(r) != "2" {
		t.Errorf("replicas = %v, want 2", r)
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	if ro, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem"); !ro {
		t.Error("the manager's root filesystem is writable")
	}
	args := fmt.Sprint(c["args"])
	for _, want := range []string{"--leader-elect", "--webhook-cert-mode=self-managed"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	for _, want := range []string{
		"PodDisruptionBudget/tenant-operator", "NetworkPolicy/tenant-operator", "ServiceAccount/tenant-operator-controller-manager",
		"ClusterRole/tenant-operator-manager", "ClusterRole/tenant-admin", "ValidatingWebhookConfiguration/tenant-operator-validating-webhook-configuration",
		"ValidatingAdmissionPolicy/tenant-deletion-protection", "Service/tenant-operator-webhook-service", "ConfigMap/tenant-operator-config",
		"CustomResourceDefinition/tenants.tenancy.tenantctl.io", "CustomResourceDefinition/rolebindings.tenancy.tenantctl.io",
	} {
		if objs[want] == nil {
			t.Errorf("%s is not rendered", want)
		}
	}
	if objs["ServiceMonitor/tenant-operator"] != nil || objs["Certificate/tenant-operator-webhook-cert"] != nil {
		t.Error("optional objects rendered by default")
	}
	if objs["CustomResourceDefinition/tenants.tenancy.tenantctl.io"].GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Error("the CRDs are not kept on uninstall by default")
	}
}

func TestRenderOptions(t *testing.T) {
	t.Run("CRDs not kept", func(t *testing.T) {
		crd := render(t, "crds.keep=false")["CustomResourceDefinition/tenants.tenancy.tenantctl.io"]
		if _, kept := crd.GetAnnotations()["helm.sh/resource-policy"]; kept {
			t.Error("crds.keep=false still keeps the CRDs")
		}
	})
	t.Run("CRDs managed elsewhere", func(t *testing.T) {
		for key := range render(t, "crds.install=false") {
			if strings.HasPrefix(key, "CustomResourceDefinition/") {
				t.Errorf("%s rendered with crds.install=false", key)
			}
		}
	})
	t.Run("cert-manager", func(t *testing.T) {
		objs := render(t, "webhook.certificates=cert-manager")
		if objs["Certificate/tenant-operator-webhook-cert"] == nil || objs["Issuer/tenant-operator-selfsigned"] == nil {
			t.Error("no Certificate and Issuer")
		}
		vwc := objs["ValidatingWebhookConfiguration/tenant-operator-validating-webhook-configuration"]
		if vwc.GetAnnotations()["cert-manager.io/inject-ca-from"] != "tenant-operator-system/tenant-operator-webhook-cert" {
			t.Errorf("caBundle not injected by cert-manager: %v", vwc.GetAnnotations())
		}
		if !strings.Contains(fmt.Sprint(objs["Deployment/tenant-operator"].Object), "--webhook-cert-mode=external") {
			t.Error("the operator still manages its certificate")
		}
	})
	t.Run("ServiceMonitor", func(t *testing.T) {
		if render(t, "metrics.serviceMonitor.enabled=true")["ServiceMonitor/tenant-operator"] == nil {
			t.Error("no ServiceMonitor")
		}
	})
	t.Run("PrometheusRule alerts on old backups and failing archiving", func(t *testing.T) {
		rule := render(t, "metrics.prometheusRule.enabled=true")["PrometheusRule/tenant-operator"]
		if rule == nil {
			t.Fatal("no PrometheusRule")
		}
		text := fmt.Sprint(rule.Object)
		for _, want := range []string{
			"tenant_operator_database_backup_age_seconds > 2 * tenant_operator_database_backup_interval_seconds",
			"tenant_operator_database_wal_archiving_failing == 1", "TenantBackupTooOld", "TenantWALArchivingFailing",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the PrometheusRule lacks %q", want)
			}
		}
		if render(t)["PrometheusRule/tenant-operator"] != nil {
			t.Error("a PrometheusRule by default, which needs the Prometheus Operator's CRDs")
		}
	})
	t.Run("operator identity follows the ServiceAccount", func(t *testing.T) {
		objs := render(t, "serviceAccount.name=platform-tenants")
		policy := objs["ValidatingAdmissionPolicy/tenant-ownership"]
		if policy == nil || !strings.Contains(fmt.Sprint(policy.Object), "system:serviceaccount:tenant-operator-system:platform-tenants") {
			t.Error("the ownership policy does not exempt the renamed ServiceAccount")
		}
	})
}

// The kustomize install (config/default, make deploy) and the chart install the same
// generated platform objects under the same names: two paths, one source.
func TestKustomizeAndChartInstallTheSameObjects(t *testing.T) {
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(assets, "kubectl"), "kustomize", filepath.Join(testenv.RepoRoot(), "config", "default")).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize config/default: %v\n%s", err, out)
	}
	kustomized := map[string]bool{}
	var leaderElection *unstructured.Unstructured
	for _, doc := range strings.Split(string(out), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err == nil && u.GetKind() != "" {
			kustomized[u.GetKind()+"/"+u.GetName()] = true
			if u.GetKind() == "Role" && strings.Contains(u.GetName(), "leader-election") {
				leaderElection = u
			}
		}
	}
	shared := []string{"CustomResourceDefinition", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"ValidatingWebhookConfiguration", "ServiceAccount"}
	rendered := render(t)
	for key := range rendered {
		kind, _, _ := strings.Cut(key, "/")
		for _, k := range shared {
			if kind == k && !kustomized[key] {
				t.Errorf("the chart installs %s, config/default does not", key)
			}
		}
	}
	// The leader-election Role is written twice: the same rules (the chart's once lacked core Events,
	// and the leader's "became leader" event was refused on the real cluster).
	chartRole := rendered["Role/tenant-operator-leader-election"]
	if leaderElection == nil || chartRole == nil {
		t.Errorf("a leader-election Role: in config/default %v, in the chart %v", leaderElection != nil, chartRole != nil)
	} else if want, got := fmt.Sprint(leaderElection.Object["rules"]), fmt.Sprint(chartRole.Object["rules"]); got != want {
		t.Errorf("the chart's leader-election Role grants\n%s\nconfig/rbac's\n%s", got, want)
	}
	for _, key := range []string{"ClusterRole/tenant-admin", "ClusterRole/tenant-developer", "ClusterRole/tenant-viewer",
		"Service/tenant-operator-webhook-service", "ValidatingWebhookConfiguration/tenant-operator-validating-webhook-configuration"} {
		if !kustomized[key] || rendered[key] == nil {
			t.Errorf("%s: in config/default %v, in the chart %v", key, kustomized[key], rendered[key] != nil)
		}
	}
}
