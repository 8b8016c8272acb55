package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tenantctl/tenant-operator/controllers/rolebinding"
	"github.com/tenantctl/tenant-operator/controllers/tenant"
)

// shared holds the one copy of what cached objects repeat.
var shared = newInterner()

// lastApplied is the annotation client-side kubectl apply keeps a copy of the whole object in.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimForCache drops from an object entering the manager's cache what the operator never reads: the
// managedFields entries of other field managers (GitOps tools, kubectl, CloudNativePG and ESO
// writing status) and kubectl's last-applied copy of the object. Only the operator's own applied
// fields are kept, which the applier compares with the desired object (internal/apply.Difference).
// Often more than half of an object's size, and the cache holds every object of every tenant.
//
// The cached objects are only ever read, or changed by merge patches computed against a cached
// copy (so the trimmed fields are in neither side of the patch); nothing sends a cached object back
// whole with an update, which would replace the managedFields on the server.
//
// What is left is then interned (see interner): the parts every tenant's objects repeat are held once.
func trimForCache(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil // a tombstone or a list: nothing to trim
	}
	if fields := m.GetManagedFields(); len(fields) > 0 {
		kept := fields[:0:0]
		for _, e := range fields {
			if ownApply(e) {
				kept = append(kept, e)
			}
		}
		m.SetManagedFields(kept)
	}
	if a := m.GetAnnotations(); a[lastApplied] != "" {
		delete(a, lastApplied)
		m.SetAnnotations(a)
	}
	if _, ok := obj.(runtime.Unstructured); !ok { // an unstructured object's metadata is maps, not strings to share
		shared.meta(m)
	}
	return obj, nil
}

func ownApply(e metav1.ManagedFieldsEntry) bool {
	return e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" &&
		(e.Manager == tenant.FieldOwner || e.Manager == rolebinding.FieldOwner)
}
