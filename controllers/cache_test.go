package controllers

import (
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantctl/tenant-operator/controllers/tenant"
)

// TestTrimForCacheKeepsOnlyTheOperatorsAppliedFields: the applier's skip-or-apply decision reads
// the operator's own Apply entry, so it stays; everything else a cached object carries only for
// others goes.
func TestTrimForCacheKeepsOnlyTheOperatorsAppliedFields(t *testing.T) {
	ours := metav1.ManagedFieldsEntry{Manager: tenant.FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
		FieldsV1: metav1.NewFieldsV1(`{"f:data":{"f:a":{}}}`)}
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "x", Namespace: "y",
		Annotations: map[string]string{lastApplied: `{"big":"copy"}`, "team": "kept"},
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "argocd-controller", Operation: metav1.ManagedFieldsOperationApply},
			ours,
			// The operator's own status writes and merge patches are not what the applier compares.
			{Manager: tenant.FieldOwner, Operation: metav1.ManagedFieldsOperationUpdate},
			{Manager: tenant.FieldOwner, Operation: metav1.ManagedFieldsOperationApply, Subresource: "status"},
			{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate},
		},
	}}
	out, err := trimForCache(obj)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.ConfigMap)
	if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != ours.Manager || got.ManagedFields[0].FieldsV1.GetRawString() != ours.FieldsV1.GetRawString() {
		t.Errorf("managedFields after trimming: %+v, want only the operator's applied entry", got.ManagedFields)
	}
	if _, ok := got.Annotations[lastApplied]; ok || got.Annotations["team"] != "kept" {
		t.Errorf("annotations after trimming: %v, want kubectl's last-applied copy gone and the rest kept", got.Annotations)
	}
	// Something that is not an object (a tombstone) passes through.
	if out, err := trimForCache("not an object"); err != nil || out != "not an object" {
		t.Errorf("trimForCache(non-object) = %v, %v", out, err)
	}
}

// TestTrimForCacheSharesWhatTenantsRepeat: two tenants' objects decoded separately end up pointing
// at one copy of the label key and of the field manager's name, and still read the same.
func TestTrimForCacheSharesWhatTenantsRepeat(t *testing.T) {
	object := func(tenantName string) *corev1.LimitRange {
		return &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{
			Name: "limits", Namespace: tenantName,
			// Each built from bytes, as decoding does: two separate copies of the same text.
			Labels: map[string]string{string([]byte("tenancy.tenantctl.io/tenant")): tenantName},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: string([]byte(tenant.FieldOwner)), Operation: metav1.ManagedFieldsOperationApply,
				FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:limits":{}}}`)}},
		}}
	}
	trimmed := func(name string) *corev1.LimitRange {
		out, err := trimForCache(object(name))
		if err != nil {
			t.Fatal(err)
		}
		return out.(*corev1.LimitRange)
	}
	a, b := trimmed("a"), trimmed("b")
	key := func(l *corev1.LimitRange) *byte {
		for k := range l.Labels {
			return unsafe.StringData(k) //nolint:gosec // G103: the test compares where two strings' bytes are, which only unsafe tells
		}
		return nil
	}
	if key(a) != key(b) {
		t.Error("two tenants' label keys are held twice after trimming, want one shared copy")
	}
	if unsafe.StringData(a.ManagedFields[0].Manager) != unsafe.StringData(b.ManagedFields[0].Manager) { //nolint:gosec // G103: as above
		t.Error("two tenants' field manager names are held twice after trimming, want one shared copy")
	}
	if b.Labels["tenancy.tenantctl.io/tenant"] != "b" || b.ManagedFields[0].Manager != tenant.FieldOwner ||
		b.ManagedFields[0].FieldsV1.GetRawString() != `{"f:spec":{"f:limits":{}}}` {
		t.Errorf("after interning: labels %v, managedFields %+v; want them unchanged", b.Labels, b.ManagedFields)
	}
}
