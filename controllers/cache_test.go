package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantctl/tenant-operator/controllers/tenant"
)

// TestTrimForCacheKeepsOnlyTheOperatorsAppliedFields: the applier's skip-or-apply decision reads
// the operator's own Apply entry, so it stays; everything else a cached object carries only for
// others goes.
func TestTrimForCacheKeepsOnlyTheOperatorsAppliedFields(t *testing.T) {
	ours := metav1.ManagedFieldsEntry{Manager: tenant.FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{"f:a":{}}}`)}}
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
	if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != ours.Manager || string(got.ManagedFields[0].FieldsV1.Raw) != string(ours.FieldsV1.Raw) {
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
