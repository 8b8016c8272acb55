package apply_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/apply"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

var k8s client.Client

func TestMain(m *testing.M) {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s, err = client.New(env.Config, client.Options{Scheme: controllers.NewScheme()})
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	_ = env.Stop()
	os.Exit(code)
}

func externalSecret(namespace string) *externalsecrets.ExternalSecret {
	return &externalsecrets.ExternalSecret{
		TypeMeta: metav1.TypeMeta{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret"},
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: namespace,
			Labels: map[string]string{"tenancy.tenantctl.io/tenant": "acme"}},
		Spec: externalsecrets.ExternalSecretSpec{
			SecretStoreRef:  externalsecrets.StoreRef{Name: "vault", Kind: "SecretStore"},
			RefreshInterval: &metav1.Duration{Duration: 10 * time.Second},
			DataFrom:        []externalsecrets.ExternalSecretDataFrom{{Extract: &externalsecrets.RemoteRef{Key: "tenants/acme/api"}}},
		},
	}
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func mustApply(t *testing.T, a *apply.Applier, obj client.Object, wantWrite bool, why string) {
	t.Helper()
	wrote, err := a.Apply(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	if wrote != wantWrite {
		t.Fatalf("%s: Apply wrote = %v, want %v", why, wrote, wantWrite)
	}
}

// ESO writes an ExternalSecret's status on every refresh; the operator must not answer each with a
// write, and must still repair any change to what it applied. (The status writes are the test's,
// standing in for ESO: this suite runs kube-apiserver and etcd only. make test-cluster counts the
// writes with the real ESO.)
func TestStatusWritesByOthersCauseNoWriteButDriftIsRepaired(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "status-writes")
	a := apply.New(k8s, "tenant-operator")
	mustApply(t, a, externalSecret(ns), true, "first apply")
	mustApply(t, a, externalSecret(ns), false, "nothing changed")

	live := &externalsecrets.ExternalSecret{}
	for i := range 3 {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, live); err != nil {
			t.Fatal(err)
		}
		live.Status.Conditions = []externalsecrets.Condition{{Type: "Ready", Status: "True", Reason: fmt.Sprintf("SecretSynced%d", i)}}
		if err := k8s.Status().Update(ctx, live); err != nil {
			t.Fatal(err)
		}
		mustApply(t, a, externalSecret(ns), false, "after a status write by ESO")
	}

	// Someone removes the operator's label: the metadata no longer holds, so it is re-applied.
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, live); err != nil {
		t.Fatal(err)
	}
	delete(live.Labels, "tenancy.tenantctl.io/tenant")
	if err := k8s.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	mustApply(t, a, externalSecret(ns), true, "after the label was removed")
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, live); err != nil {
		t.Fatal(err)
	}
	if live.Labels["tenancy.tenantctl.io/tenant"] != "acme" {
		t.Errorf("label not restored: %v", live.Labels)
	}

	// Someone edits the spec: the generation moves, so it is re-applied.
	live.Spec.RefreshInterval = &metav1.Duration{Duration: time.Hour}
	if err := k8s.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	mustApply(t, a, externalSecret(ns), true, "after the spec was edited")
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, live); err != nil {
		t.Fatal(err)
	}
	if live.Spec.RefreshInterval.Duration != 10*time.Second {
		t.Errorf("spec not restored: refreshInterval %s", live.Spec.RefreshInterval.Duration)
	}

	// A new desired state is applied.
	changed := externalSecret(ns)
	changed.Spec.RefreshInterval = &metav1.Duration{Duration: time.Minute}
	mustApply(t, a, changed, true, "after the desired state changed")
}

// Kinds without a generation (ConfigMap, Secret, RBAC) are compared by resourceVersion: any edit is
// drift.
func TestEditOfAKindWithoutGenerationIsRepaired(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "no-generation")
	a := apply.New(k8s, "tenant-operator")
	cm := func() *corev1.ConfigMap {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}, Data: map[string]string{"mode": "strict"}}
	}
	mustApply(t, a, cm(), true, "first apply")
	mustApply(t, a, cm(), false, "nothing changed")
	live := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, live); err != nil {
		t.Fatal(err)
	}
	live.Data["mode"] = "lax"
	if err := k8s.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	mustApply(t, a, cm(), true, "after the data was edited")
}

// The skip-or-apply decision reads only the live object: a new Applier (an operator that
// restarted, with nothing in memory) sends no write for what is already as desired, and foreign
// fields (a label a GitOps tool adds) cost nothing either. A field dropped from the desired state is
// released: that takes an apply.
func TestRestartForeignFieldsAndDroppedFields(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "restart")
	cm := func(data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns, Labels: map[string]string{"tenancy.tenantctl.io/tenant": "acme"}},
			Data:       data}
	}
	mustApply(t, apply.New(k8s, "tenant-operator"), cm(map[string]string{"mode": "strict", "level": "2"}), true, "first apply")
	mustApply(t, apply.New(k8s, "tenant-operator"), cm(map[string]string{"mode": "strict", "level": "2"}), false, "after a restart")
	mustApply(t, apply.New(k8s, "tenant-operator"), externalSecret(ns), true, "first apply of an ExternalSecret")
	mustApply(t, apply.New(k8s, "tenant-operator"), externalSecret(ns), false, "ExternalSecret after a restart")

	live := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, live); err != nil {
		t.Fatal(err)
	}
	live.Labels["kustomize.toolkit.fluxcd.io/name"] = "tenants"
	if err := k8s.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	mustApply(t, apply.New(k8s, "tenant-operator"), cm(map[string]string{"mode": "strict", "level": "2"}), false, "after a foreign label was added")

	mustApply(t, apply.New(k8s, "tenant-operator"), cm(map[string]string{"mode": "strict"}), true, "after a key was dropped")
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, live); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.Data["level"]; ok || live.Labels["kustomize.toolkit.fluxcd.io/name"] != "tenants" {
		t.Errorf("want level released and the foreign label kept: data %v, labels %v", live.Data, live.Labels)
	}
	mustApply(t, apply.New(k8s, "tenant-operator"), cm(map[string]string{"mode": "strict"}), false, "after the release")
}
