package campaign

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/controllers/tenant"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestVersionsSeeEveryWriteOfTheOperatorAndNoOtherWriters shows, against a real kube-apiserver,
// that the upgrade class's check can fail: an apply of the operator that changes an object is
// seen, one that changes nothing is not (the API server does not persist it), another manager's
// write to an object the operator owns is not, and any change to an object the operator never
// wrote (the customer's data) is.
func TestVersionsSeeEveryWriteOfTheOperatorAndNoOtherWriters(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	c, err := client.New(env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}

	ns := func(quota string) *corev1.Namespace {
		return &corev1.Namespace{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: "tenant-up-t01", Labels: map[string]string{
				tenancyv1alpha1.LabelTenant: "up-t01", "example.com/tier": quota,
			}},
		}
	}
	apply := func(obj client.Object, owner string) {
		t.Helper()
		if err := c.Patch(ctx, obj, client.Apply, client.FieldOwner(owner), client.ForceOwnership); err != nil { //nolint:staticcheck // SA1019: a server-side apply of a whole object, as kubectl and GitOps tools send it; client.Client.Apply takes apply configurations
			t.Fatal(err)
		}
	}
	apply(ns("gold"), tenant.FieldOwner)
	data := func(rows string) *corev1.ConfigMap {
		return &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: customerData, Namespace: "tenant-up-t01"},
			Data:       map[string]string{"rows": rows},
		}
	}
	apply(data("1"), "customer")

	read := func() map[string]string {
		t.Helper()
		v, err := versions(ctx, c, "up")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := read()
	const nsKey, dataKey = "Namespace /tenant-up-t01", "ConfigMap tenant-up-t01/" + customerData
	if before[nsKey] == "" || before[dataKey] == "" {
		t.Fatalf("versions = %v, want the namespace and the customer's data", before)
	}

	apply(ns("gold"), tenant.FieldOwner) // the same apply again: nothing changes
	other := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-up-t01", Annotations: map[string]string{"example.com/owner": "someone"}},
	}
	apply(other, "kubectl") // another writer
	if after := read(); after[nsKey] != before[nsKey] {
		t.Errorf("a no-op apply of the operator or another manager's write counted as the operator's:\n%s\n%s", before[nsKey], after[nsKey])
	}

	// An entry's time has a resolution of a second: the new operator of an upgrade writes seconds
	// after the previous one's last write, and so does this one.
	last := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "tenant-up-t01"}, last); err != nil {
		t.Fatal(err)
	}
	for _, e := range last.ManagedFields {
		if e.Manager == tenant.FieldOwner {
			for deadline := time.Now().Add(5 * time.Second); !time.Now().After(e.Time.Add(time.Second)); {
				if time.Now().After(deadline) {
					t.Fatalf("the clock did not pass %s", e.Time)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	apply(ns("silver"), tenant.FieldOwner) // the same fields, another value
	apply(data("2"), "customer")
	after := read()
	if after[nsKey] == before[nsKey] {
		t.Errorf("an apply of the operator that changed the namespace was not seen: %s", after[nsKey])
	}
	if after[dataKey] == before[dataKey] {
		t.Errorf("a change to the customer's data was not seen: %s", after[dataKey])
	}
}
