package reconcileutil

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
)

func TestOwnWrites(t *testing.T) {
	at := func(rv string) *tenancyv1alpha1.Tenant {
		return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", ResourceVersion: rv}}
	}
	var w OwnWrites
	if w.Behind(at("5")) {
		t.Error("behind a write that was never made")
	}
	w.Wrote(at("10"))
	if !w.Behind(at("9")) {
		t.Error("the cache at 9 is not behind a write at 10")
	}
	if !w.Behind(at("9")) {
		t.Error("a stale read forgot the write")
	}
	if w.Behind(at("10")) {
		t.Error("the cache at the write's own resourceVersion is behind")
	}
	if w.Behind(at("9")) {
		t.Error("the record outlived the cache catching up") // dropped at 10: nothing to compare with
	}
	w.Wrote(at("12"))
	if w.Behind(at("13")) {
		t.Error("a later write by someone else is behind")
	}
	w.Wrote(at("not-a-number"))
	if w.Behind(at("9")) {
		t.Error("a resourceVersion that cannot be compared is behind")
	}
	w.Wrote(at("20"))
	w.Forget(client.ObjectKeyFromObject(at("")))
	if w.Behind(at("19")) {
		t.Error("a forgotten write is still remembered")
	}
}
