package v1alpha1_test

// These tests send manifests to a real kube-apiserver with the generated CRDs installed and check
// what a user sees: every invalid object is refused at admission with a message that names the
// offending field, every sample is accepted, and installing the CRDs raises no CEL cost warning.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

var (
	k8s client.Client
	cfg *rest.Config
)

func TestMain(m *testing.M) {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg = env.Config
	scheme := runtime.NewScheme()
	_ = apiextensionsv1.AddToScheme(scheme)
	_ = corev1.AddToScheme(scheme)
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("test manifest does not parse: %v", err)
	}
	return u
}

// tenant returns a Tenant manifest with the given name and spec (YAML, indented by two spaces).
func tenant(name, spec string) string {
	return "apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: " + name + "\nspec:\n" + spec
}

func roleBinding(spec string) string {
	return "apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: RoleBinding\nmetadata:\n  name: grant\n  namespace: default\nspec:\n" + spec
}

const validSubjects = "  role: developer\n  subjects:\n  - {kind: User, name: 'oidc:bob@acme.example'}\n"

// TestInvalidObjectsAreRejectedNamingTheField creates each manifest and expects the apiserver to
// refuse it with an Invalid error whose text contains every wanted fragment (the field path and
// the reason).
func TestInvalidObjectsAreRejectedNamingTheField(t *testing.T) {
	cases := map[string]struct {
		manifest string   // the object as a user would apply it
		want     []string // fragments the error message must contain: the field, then the reason
	}{
		"tenant name longer than 40 characters": {
			manifest: tenant(strings.Repeat("a", 41), "  {}\n"),
			want:     []string{"metadata.name must be at most 40 characters"},
		},
		"tenant name starting with a digit": {
			manifest: tenant("1acme", "  {}\n"),
			want:     []string{"metadata.name must be a DNS label that starts with a letter"},
		},
		"tenant name with a dot": {
			manifest: tenant("acme.corp", "  {}\n"),
			want:     []string{"metadata.name must be a DNS label"},
		},
		"tenant without spec": {
			manifest: "apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: nospec\n",
			want:     []string{"spec", "Required value"},
		},
		"display name too long": {
			manifest: tenant("t", "  displayName: "+strings.Repeat("x", 129)+"\n"),
			want:     []string{"spec.displayName", "may not be more than 128"},
		},
		"owner of an unknown kind": {
			manifest: tenant("t", "  owners:\n  - {kind: Robot, name: r2d2}\n"),
			want:     []string{"spec.owners[0].kind", "Unsupported value"},
		},
		"ServiceAccount owner without a namespace": {
			manifest: tenant("t", "  owners:\n  - {kind: ServiceAccount, name: deployer}\n"),
			want:     []string{"spec.owners[0].namespace", "namespace is required for a ServiceAccount subject"},
		},
		"User owner with a namespace": {
			manifest: tenant("t", "  owners:\n  - {kind: User, name: alice, namespace: team}\n"),
			want:     []string{"spec.owners[0].namespace", "must not be set for a User or Group"},
		},
		"owner with an empty name": {
			manifest: tenant("t", "  owners:\n  - {kind: Group, name: ''}\n"),
			want:     []string{"spec.owners[0].name", "at least 1 chars long"},
		},
		"more than 32 owners": {
			manifest: tenant("t", "  owners:\n"+strings.Repeat("  - {kind: User, name: u}\n", 33)),
			want:     []string{"spec.owners", "must have at most 32 items"},
		},
		"namespace kube-system": {
			manifest: tenant("t", "  namespace:\n    name: kube-system\n"),
			want:     []string{"spec.namespace.name", "must not be a system namespace"},
		},
		"namespace name that is not a DNS label": {
			manifest: tenant("t", "  namespace:\n    name: Tenant_A\n"),
			want:     []string{"spec.namespace.name", "should match"},
		},
		"namespace label reserved for the operator": {
			manifest: tenant("t", "  namespace:\n    labels:\n      tenancy.tenantctl.io/tenant: other\n"),
			want:     []string{"spec.namespace.labels", "must not set labels reserved for the operator"},
		},
		"namespace label weakening Pod Security": {
			manifest: tenant("t", "  namespace:\n    labels:\n      pod-security.kubernetes.io/enforce: privileged\n"),
			want:     []string{"spec.namespace.labels", "must not set labels reserved for the operator"},
		},
		// Found by FuzzAcceptedTenantBuildsAcceptedObjects: these were accepted, and the namespace
		// the operator then built was refused by the apiserver, every time it tried.
		"namespace label with an empty key": {
			manifest: tenant("t", "  namespace:\n    labels:\n      '': x\n"),
			want:     []string{"spec.namespace.labels", "every key must be a valid label key"},
		},
		"namespace label key with a space": {
			manifest: tenant("t", "  namespace:\n    labels:\n      'team name': x\n"),
			want:     []string{"spec.namespace.labels", "every key must be a valid label key"},
		},
		"namespace label key whose name is longer than 63": {
			manifest: tenant("t", "  namespace:\n    labels:\n      example.com/"+strings.Repeat("k", 64)+": x\n"),
			want:     []string{"spec.namespace.labels", "every key must be a valid label key"},
		},
		"namespace label value longer than 63": {
			manifest: tenant("t", "  namespace:\n    labels:\n      team: "+strings.Repeat("v", 64)+"\n"),
			want:     []string{"spec.namespace.labels.team", "may not be more than 63"},
		},
		"namespace label value with a slash": {
			manifest: tenant("t", "  namespace:\n    labels:\n      team: a/b\n"),
			want:     []string{"spec.namespace.labels.team", "should match"},
		},
		"namespace annotation with an invalid key": {
			manifest: tenant("t", "  namespace:\n    annotations:\n      'not valid/': x\n"),
			want:     []string{"spec.namespace.annotations", "every key must be a valid annotation key"},
		},
		"namespace annotation value over 4096 bytes": {
			manifest: tenant("t", "  namespace:\n    annotations:\n      note: "+strings.Repeat("v", 4097)+"\n"),
			want:     []string{"spec.namespace.annotations.note", "may not be more than 4096"},
		},
		"network policy mode that turns the fence off": {
			manifest: tenant("t", "  isolation:\n    networkPolicy: None\n"),
			want:     []string{"spec.isolation.networkPolicy", "Unsupported value"},
		},
		"unknown Pod Security level": {
			manifest: tenant("t", "  isolation:\n    podSecurity: strict\n"),
			want:     []string{"spec.isolation.podSecurity", "Unsupported value"},
		},
		"allowFrom peer without a namespace selector": {
			manifest: tenant("t", "  isolation:\n    allowFrom:\n    - podSelector: {matchLabels: {app: x}}\n"),
			want:     []string{"spec.isolation.allowFrom[0].namespaceSelector", "namespaceSelector is required"},
		},
		"quota with a malformed quantity": {
			manifest: tenant("t", "  quota:\n    hard:\n      requests.cpu: lots\n"),
			want:     []string{"spec.quota.hard.requests.cpu", "should match"},
		},
		"negative quota": {
			manifest: tenant("t", "  quota:\n    hard:\n      requests.memory: -1Gi\n"),
			want:     []string{"spec.quota.hard", "quantities must not be negative"},
		},
		"negative default limit": {
			manifest: tenant("t", "  limits:\n    default:\n      cpu: -500m\n"),
			want:     []string{"spec.limits.default", "quantities must not be negative"},
		},
		"quota without any limit": {
			manifest: tenant("t", "  quota:\n    hard: {}\n"),
			want:     []string{"spec.quota.hard", "should have at least 1 properties"},
		},
		"empty limits": {
			manifest: tenant("t", "  limits: {}\n"),
			want:     []string{"spec.limits", "should have at least 1 properties"},
		},
		"unknown database mode": {
			manifest: tenant("t", "  database:\n    mode: Serverless\n"),
			want:     []string{"spec.database.mode", "Unsupported value"},
		},
		"dedicated database without storage": {
			manifest: tenant("t", "  database:\n    mode: Dedicated\n"),
			want:     []string{"spec.database.storage", "storage is required for a Dedicated database"},
		},
		"shared database with instances": {
			manifest: tenant("t", "  database:\n    mode: Shared\n    instances: 3\n"),
			want:     []string{"spec.database", "apply to a Dedicated database only"},
		},
		"zero database instances": {
			manifest: tenant("t", "  database:\n    instances: 0\n    storage: {size: 1Gi}\n"),
			want:     []string{"spec.database.instances", "should be greater than or equal to 1"},
		},
		"ten database instances": {
			manifest: tenant("t", "  database:\n    instances: 10\n    storage: {size: 1Gi}\n"),
			want:     []string{"spec.database.instances", "should be less than or equal to 9"},
		},
		"unsupported PostgreSQL version": {
			manifest: tenant("t", "  database:\n    postgresVersion: 12\n    storage: {size: 1Gi}\n"),
			want:     []string{"spec.database.postgresVersion", "should be greater than or equal to 14"},
		},
		"zero storage": {
			manifest: tenant("t", "  database:\n    storage: {size: '0'}\n"),
			want:     []string{"spec.database.storage.size", "must be greater than zero"},
		},
		"storage that is not a quantity": {
			manifest: tenant("t", "  database:\n    storage: {size: big}\n"),
			want:     []string{"spec.database.storage.size", "should match"},
		},
		"five-field backup schedule": {
			manifest: tenant("t", "  database:\n    storage: {size: 1Gi}\n    backup:\n      schedule: '0 2 * * *'\n"),
			want:     []string{"spec.database.backup.schedule", "should match"},
		},
		"backup retention in words": {
			manifest: tenant("t", "  database:\n    storage: {size: 1Gi}\n    backup:\n      retentionPolicy: 30 days\n"),
			want:     []string{"spec.database.backup.retentionPolicy", "should match"},
		},
		"backup destination without a scheme": {
			manifest: tenant("t", "  database:\n    storage: {size: 1Gi}\n    backup:\n      destinationPath: bucket/tenants\n"),
			want:     []string{"spec.database.backup.destinationPath", "should match"},
		},
		"unknown deletion policy": {
			manifest: tenant("t", "  deletionPolicy: Archive\n"),
			want:     []string{"spec.deletionPolicy", "Unsupported value"},
		},
		"retained database in a deleted namespace": {
			manifest: tenant("t", "  deletionPolicy: Delete\n  database:\n    storage: {size: 1Gi}\n    deletionPolicy: Retain\n"),
			want:     []string{"spec.database.deletionPolicy", "Retain is impossible when spec.deletionPolicy is Delete"},
		},
		"deleting an unbacked-up database without confirmation": {
			manifest: tenant("t", "  deletionPolicy: Delete\n  database:\n    storage: {size: 1Gi}\n"),
			want:     []string{"spec.database.confirmDeletionWithoutBackup", "needs spec.database.confirmDeletionWithoutBackup: true"},
		},
		"restoring a shared database": {
			manifest: tenant("t", "  database:\n    mode: Shared\n    restore: {serverName: old}\n"),
			want:     []string{"spec.database.restore", "restore applies to a Dedicated database only"},
		},
		"restore target that is not a time": {
			manifest: tenant("t", "  database:\n    storage: {size: 1Gi}\n    restore: {targetTime: yesterday}\n"),
			want:     []string{"spec.database.restore.targetTime", "date-time"},
		},
		"vault path escaping the tenant": {
			manifest: tenant("t", "  secrets:\n    vaultPath: tenants/../other\n"),
			want:     []string{"spec.secrets.vaultPath", "should match"},
		},
		"two secrets with one name": {
			manifest: tenant("t", "  secrets:\n    items:\n    - {name: api, remoteKey: a}\n    - {name: api, remoteKey: b}\n"),
			want:     []string{"spec.secrets.items[1]", "Duplicate value"},
		},
		"absolute remote key": {
			manifest: tenant("t", "  secrets:\n    items:\n    - {name: api, remoteKey: /other-tenant/api}\n"),
			want:     []string{"spec.secrets.items[0].remoteKey", "should match"},
		},
		"refresh interval in words": {
			manifest: tenant("t", "  secrets:\n    items:\n    - {name: api, remoteKey: api, refreshInterval: 1 hour}\n"),
			want:     []string{"spec.secrets.items[0].refreshInterval", "should match"},
		},
		"SSO group mapped to a malformed role": {
			manifest: tenant("t", "  sso:\n    groups:\n    - {group: 'oidc:admins', role: Cluster_Admin}\n"),
			want:     []string{"spec.sso.groups[0].role", "should match"},
		},
		"rolebinding without a role": {
			manifest: roleBinding("  subjects:\n  - {kind: User, name: bob}\n"),
			want:     []string{"spec.role", "Required value"},
		},
		"rolebinding role that is not a name": {
			manifest: roleBinding("  role: 'system:masters'\n  subjects:\n  - {kind: User, name: bob}\n"),
			want:     []string{"spec.role", "should match"},
		},
		"rolebinding without subjects": {
			manifest: roleBinding("  role: viewer\n  subjects: []\n"),
			want:     []string{"spec.subjects", "should have at least 1 items"},
		},
		"rolebinding ServiceAccount without a namespace": {
			manifest: roleBinding("  role: viewer\n  subjects:\n  - {kind: ServiceAccount, name: ci}\n"),
			want:     []string{"spec.subjects[0].namespace", "namespace is required for a ServiceAccount subject"},
		},
		"rolebinding with an unparsable expiry": {
			manifest: roleBinding(validSubjects + "  expiresAt: tomorrow\n"),
			want:     []string{"spec.expiresAt", "date-time"},
		},
		"rolebinding reason too long": {
			manifest: roleBinding(validSubjects + "  reason: " + strings.Repeat("r", 1025) + "\n"),
			want:     []string{"spec.reason", "may not be more than 1024"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj := object(t, tc.manifest)
			err := k8s.Create(context.Background(), obj, client.DryRunAll)
			expectInvalid(t, err, tc.want)
		})
	}
}

func expectInvalid(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the apiserver accepted the object; want a rejection naming %q", want)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	// A CEL rule that fails to evaluate (a field read without has()) still refuses, but shows the
	// user the evaluation error ahead of the message: each rule must evaluate on every input.
	if strings.Contains(err.Error(), "evaluating rule") || strings.Contains(err.Error(), "no such key") {
		t.Errorf("a validation rule failed to evaluate instead of refusing cleanly:\n%v", err)
	}
}

// TestInvalidUpdatesAreRejected creates a valid Tenant, then applies an invalid change to it. The
// rejected change must leave the stored object exactly as it was.
func TestInvalidUpdatesAreRejected(t *testing.T) {
	cases := map[string]struct {
		before string   // spec of the Tenant as created
		after  string   // spec of the update that must be refused
		want   []string // fragments the error message must contain
	}{
		"renaming the namespace": {
			before: "  namespace:\n    name: acme-prod\n",
			after:  "  namespace:\n    name: acme-staging\n",
			want:   []string{"spec.namespace.name", "is immutable"},
		},
		"naming the namespace after creation": {
			before: "  displayName: Acme\n",
			after:  "  namespace:\n    name: acme-prod\n",
			want:   []string{"spec.namespace.name", "cannot be added or removed after creation"},
		},
		"dropping the namespace name": {
			before: "  namespace:\n    name: acme-prod\n",
			after:  "  displayName: Acme\n",
			want:   []string{"spec.namespace.name", "cannot be added or removed after creation"},
		},
		"changing the database mode": {
			before: "  database:\n    mode: Dedicated\n    storage: {size: 10Gi}\n",
			after:  "  database:\n    mode: Shared\n",
			want:   []string{"spec.database.mode", "is immutable"},
		},
		"shrinking storage": {
			before: "  database:\n    storage: {size: 20Gi}\n",
			after:  "  database:\n    storage: {size: 10Gi}\n",
			want:   []string{"spec.database.storage.size", "cannot shrink"},
		},
		"lowering the PostgreSQL version": {
			before: "  database:\n    postgresVersion: 17\n    storage: {size: 10Gi}\n",
			after:  "  database:\n    postgresVersion: 16\n    storage: {size: 10Gi}\n",
			want:   []string{"spec.database.postgresVersion", "cannot be lowered"},
		},
		"changing the storage class": {
			before: "  database:\n    storage: {size: 10Gi, storageClassName: fast}\n",
			after:  "  database:\n    storage: {size: 10Gi, storageClassName: slow}\n",
			want:   []string{"spec.database.storage.storageClassName", "is immutable"},
		},
		"removing the database": {
			before: "  database:\n    storage: {size: 10Gi}\n",
			after:  "  displayName: no more database\n",
			want:   []string{"spec.database", "cannot be removed once set"},
		},
		"restoring an existing database": {
			before: "  database:\n    storage: {size: 10Gi}\n",
			after:  "  database:\n    storage: {size: 10Gi}\n    restore: {serverName: postgres}\n",
			want:   []string{"spec.database.restore", "restore can be set only when the database is created"},
		},
		"moving the Vault path": {
			before: "  secrets:\n    vaultPath: tenants/acme\n",
			after:  "  secrets:\n    vaultPath: tenants/globex\n",
			want:   []string{"spec.secrets.vaultPath", "is immutable"},
		},
	}
	i := 0
	for name, tc := range cases {
		i++
		name, tc, tenantName := name, tc, fmt.Sprintf("update-%d", i)
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			created := object(t, tenant(tenantName, tc.before))
			if err := k8s.Create(ctx, created); err != nil {
				t.Fatalf("create the valid Tenant: %v", err)
			}
			t.Cleanup(func() { _ = k8s.Delete(ctx, created) })

			changed := object(t, tenant(tenantName, tc.after))
			changed.SetResourceVersion(created.GetResourceVersion())
			expectInvalid(t, k8s.Update(ctx, changed), tc.want)

			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(created.GroupVersionKind())
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(created), stored); err != nil {
				t.Fatal(err)
			}
			if stored.GetResourceVersion() != created.GetResourceVersion() {
				t.Errorf("a rejected update changed the stored Tenant (resourceVersion %s -> %s)",
					created.GetResourceVersion(), stored.GetResourceVersion())
			}
		})
	}
}

// TestAllowedUpdates shows the changes the rules must let through: storage grows, the PostgreSQL
// version rises, and an edit elsewhere in the spec is not blocked by the transition rules.
func TestAllowedUpdates(t *testing.T) {
	ctx := context.Background()
	created := object(t, tenant("grows", "  namespace:\n    name: grows-ns\n  database:\n    postgresVersion: 16\n    storage: {size: 10Gi, storageClassName: fast}\n"))
	if err := k8s.Create(ctx, created); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, created) })
	changed := object(t, tenant("grows", "  displayName: Grown\n  namespace:\n    name: grows-ns\n    labels: {team: blue, example.com/cost-center: cc-4_2.x, app.kubernetes.io/part-of: ''}\n    annotations: {example.com/owner: 'Finance, 3rd floor'}\n  database:\n    postgresVersion: 17\n    storage: {size: 50Gi, storageClassName: fast}\n"))
	changed.SetResourceVersion(created.GetResourceVersion())
	if err := k8s.Update(ctx, changed); err != nil {
		t.Fatalf("growing storage, raising the version and relabelling (prefixed keys, an empty value) must be allowed: %v", err)
	}
}

// TestDefaults shows the defaults a user gets from an empty spec.
func TestDefaults(t *testing.T) {
	ctx := context.Background()
	obj := object(t, tenant("defaults", "  database:\n    storage: {size: 1Gi}\n    backup: {}\n  secrets:\n    items:\n    - {name: api, remoteKey: api}\n"))
	if err := k8s.Create(ctx, obj, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"spec.deletionPolicy":                  "Retain",
		"spec.isolation.networkPolicy":         "DenyIngress",
		"spec.isolation.podSecurity":           "restricted",
		"spec.database.mode":                   "Dedicated",
		"spec.database.postgresVersion":        int64(17),
		"spec.database.backup.schedule":        "0 0 2 * * *",
		"spec.database.backup.retentionPolicy": "30d",
		"spec.secrets.items.0.refreshInterval": "1h",
	} {
		got, ok := lookup(obj.Object, strings.Split(path, "."))
		if !ok || got != want {
			t.Errorf("%s defaults to %v (set: %v), want %v", path, got, ok, want)
		}
	}
}

func lookup(obj any, path []string) (any, bool) {
	for _, p := range path {
		switch o := obj.(type) {
		case map[string]any:
			obj = o[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(o) {
				return nil, false
			}
			obj = o[i]
		default:
			return nil, false
		}
	}
	return obj, obj != nil
}

// TestSamplesAreAccepted creates every object in config/samples.
func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "tenancy_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found in config/samples: %v", err)
	}
	var once sync.Once
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			if err := utilyaml.Unmarshal(data, &obj.Object); err != nil {
				t.Fatal(err)
			}
			if ns := obj.GetNamespace(); ns != "" {
				once.Do(func() {
					_ = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
				})
			}
			if err := k8s.Create(ctx, obj, client.DryRunAll); err != nil {
				t.Fatalf("sample %s is rejected: %v", filepath.Base(f), err)
			}
		})
	}
}

// TestCRDsInstallWithoutWarnings re-applies the generated CRDs and fails on any warning from the
// apiserver, such as a CEL rule whose estimated cost is close to the limit.
func TestCRDsInstallWithoutWarnings(t *testing.T) {
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	var warnings []string
	var mu sync.Mutex
	warnCfg := rest.CopyConfig(cfg)
	warnCfg.WarningHandlerWithContext = warningRecorder(func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, msg)
	})
	c, err := client.New(warnCfg, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil {
			t.Fatal(err)
		}
		crd.SetManagedFields(nil)
		if err := c.Create(ctx, crd.DeepCopy(), client.DryRunAll); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("dry-run create %s: %v", crd.Name, err)
		}
		current := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, current); err != nil {
			t.Fatal(err)
		}
		crd.ResourceVersion = current.ResourceVersion
		if err := c.Update(ctx, crd, client.DryRunAll); err != nil {
			t.Fatalf("dry-run update %s: %v", crd.Name, err)
		}
	}
	if len(warnings) > 0 {
		t.Errorf("installing the CRDs raised warnings:\n%s", strings.Join(warnings, "\n"))
	}
}

type warningRecorder func(string)

func (w warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w(msg)
}
