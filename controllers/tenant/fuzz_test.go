package tenant_test

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers/tenant"
	"github.com/tenantctl/tenant-operator/internal/builders/access"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/vaultcheck"
)

// fuzzNamespace holds the dry runs of the namespaced objects a fuzzed Tenant builds: the Namespace
// object itself is dry-run under its own name, which checks the name; the others are checked here,
// since a dry run needs an existing namespace.
const fuzzNamespace = "fuzz-built"

// fuzzConfig is a platform configuration with every feature on: Vault, a shared database cluster,
// backups with a bucket per tenant.
func fuzzConfig(t testing.TB) config.Config {
	cfg, err := config.Parse([]byte(`vault:
  address: https://vault.example:8200
  auth: {method: token, tokenSecret: {namespace: tenant-operator-system, name: vault-token, key: token}}
database:
  shared: {name: shared-pg, namespace: ` + fuzzNamespace + `}
  backup:
    objectStore:
      destinationPath: s3://tenant-{tenant}/
      s3Credentials:
        accessKeyId: {name: backup-credentials, key: ACCESS_KEY_ID}
        secretAccessKey: {name: backup-credentials, key: ACCESS_SECRET_KEY}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// FuzzAcceptedTenantBuildsAcceptedObjects: any Tenant kube-apiserver accepts (schema, CEL and the
// admission policies, as `kubectl apply` meets them) must build, through the same builders the
// reconciler applies, objects the apiserver accepts too (names derived from the Tenant included),
// unless the operator's own validation refuses it (then the Tenant says InvalidSpec and nothing is
// built). And its Vault policies may reach only its own path: the default "<prefix>/<tenant>", or
// an override outside the platform's prefix, never a glob, never another place in the prefix.
//
// make fuzz runs it for a bounded time; make test runs the seed corpus (testdata/fuzz) and the
// seeds below as ordinary tests.
func FuzzAcceptedTenantBuildsAcceptedObjects(f *testing.F) {
	// Seeds the apiserver accepts, so that the ordinary run builds: every feature, a Shared
	// database with an override path outside the prefix, the smallest tenant; and one it refuses.
	f.Add("acme", "team", "blue", "restricted", "DenyIngress", "8", "16Gi", "User", "oidc:alice@acme.example", "Dedicated", int64(3), "20Gi", "", "stripe-api", "stripe", "0 0 2 * * *", "Delete")
	f.Add("globex-2", "example.com/tier", "gold", "baseline", "DenyAll", "", "", "Group", "oidc:globex-admins", "Shared", int64(0), "", "teams/globex", "smtp", "smtp", "", "Retain")
	f.Add("a", "app.kubernetes.io/part-of", "", "privileged", "", "100m", "1", "", "", "", int64(0), "", "tenants/a", "x", "y", "", "")
	f.Add("refused-"+strings.Repeat("n", 40), "k", "v", "", "", "0", "0", "User", "u", "", int64(0), "", "", "", "", "", "")
	built := 0
	f.Cleanup(func() {
		if fuzzing := flag.Lookup("test.fuzz"); (fuzzing == nil || fuzzing.Value.String() == "") && !f.Failed() && built < 3 {
			f.Errorf("only %d of the seeds the apiserver should accept were accepted and built: the target tests nothing", built)
		}
	})

	ctx := context.Background()
	cfg := fuzzConfig(f)
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fuzzNamespace}}); client.IgnoreAlreadyExists(err) != nil {
		f.Fatal(err)
	}
	// The built objects are dry-run as the operator writes them: with its identity, which the
	// admission policies let manage the tenancy labels, and its least-privilege ClusterRole.
	opConfig, err := env.OperatorConfig(ctx, admin)
	if err != nil {
		f.Fatal(err)
	}
	operator, err := client.New(opConfig, client.Options{Scheme: admin.Scheme()})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, name, labelKey, labelValue, podSecurity, networkPolicy, cpu, memory,
		ownerKind, ownerName, dbMode string, instances int64, storage, vaultPath, itemName, remoteKey,
		schedule, deletionPolicy string) {
		// Every request of one input is bounded: a hang is a finding, not a stuck fuzzer.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		spec := map[string]any{}
		set := func(v any, path ...string) {
			if s, ok := v.(string); ok && s == "" {
				return
			}
			if err := unstructured.SetNestedField(spec, v, path...); err != nil {
				t.Fatal(err)
			}
		}
		set(map[string]any{labelKey: labelValue}, "namespace", "labels")
		set(podSecurity, "isolation", "podSecurity")
		set(networkPolicy, "isolation", "networkPolicy")
		set(cpu, "quota", "hard", "requests.cpu")
		set(memory, "limits", "default", "memory")
		if ownerKind != "" || ownerName != "" {
			spec["owners"] = []any{map[string]any{"kind": ownerKind, "name": ownerName}}
		}
		set(deletionPolicy, "deletionPolicy")
		if dbMode != "" {
			db := map[string]any{"mode": dbMode}
			if instances != 0 {
				db["instances"] = instances
			}
			if storage != "" {
				db["storage"] = map[string]any{"size": storage}
			}
			if schedule != "" {
				db["backup"] = map[string]any{"schedule": schedule}
			} else {
				db["confirmDeletionWithoutBackup"] = true
			}
			spec["database"] = db
		}
		if vaultPath != "" || itemName != "" || remoteKey != "" {
			s := map[string]any{}
			if vaultPath != "" {
				s["vaultPath"] = vaultPath
			}
			if itemName != "" || remoteKey != "" {
				s["items"] = []any{map[string]any{"name": itemName, "remoteKey": remoteKey}}
			}
			spec["secrets"] = s
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": tenancyv1alpha1.GroupVersion.String(), "kind": "Tenant",
			"metadata": map[string]any{"name": name}, "spec": spec,
		}}
		if err := admin.Create(ctx, u, client.DryRunAll); err != nil {
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) && !apierrors.IsForbidden(err) {
				t.Fatalf("the apiserver failed to decide on a Tenant (not a refusal): %v", err)
			}
			return // refused at admission: the schema, CEL or a policy did its job
		}
		tnt := &tenancyv1alpha1.Tenant{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, tnt); err != nil {
			t.Fatalf("an accepted Tenant does not decode: %v", err)
		}
		// What the reconciler refuses with InvalidSpec it does not build.
		if _, ok := access.Validate(tnt, cfg); !ok {
			return
		}
		if tnt.Spec.Database != nil {
			if _, ok := database.Validate(tnt, cfg); !ok {
				return
			}
			if _, ok := database.ValidatePaths(tnt, cfg); !ok {
				return
			}
		}
		if secrets.Requested(tnt) {
			if _, ok := secrets.Validate(tnt, cfg.Vault, nil); !ok {
				return
			}
			var rules []string
			for _, p := range secrets.Policies(tnt, cfg.Vault) {
				rules = append(rules, p.Rules)
			}
			if outside := vaultcheck.OutsideOwnPath(tnt.Name, secrets.Path(tnt, cfg.Vault), cfg.Vault, rules...); outside != "" {
				t.Fatal(outside)
			}
		}
		built++
		for _, obj := range tenant.Desired(tnt, cfg) {
			obj = obj.DeepCopyObject().(client.Object)
			kind := obj.GetObjectKind().GroupVersionKind().Kind
			namespaced := obj.GetNamespace() != ""
			if namespaced {
				obj.SetNamespace(fuzzNamespace)
			}
			obj.SetResourceVersion("")
			opts := []client.CreateOption{client.DryRunAll}
			if kind == "ClusterRole" {
				// Created for real, and removed after: the apiserver checks a binding against the
				// role it binds, which a dry run would not have left behind.
				opts = nil
				defer func(o client.Object) { _ = admin.Delete(ctx, o) }(obj)
			}
			if err := operator.Create(ctx, obj, opts...); err != nil && !apierrors.IsAlreadyExists(err) {
				if meta.IsNoMatchError(err) {
					continue
				}
				t.Fatalf("Tenant %q (spec %v) was accepted, but its %s %q is refused: %v", name, spec, kind, obj.GetName(), err)
			}
		}
	})
}
