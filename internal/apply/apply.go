// Package apply writes managed objects with server-side apply, and only when needed.
//
// Steady state must cost nothing: a pass that finds every object as desired issues no request. The
// Applier decides skip-or-apply from the live object alone (read from the informer cache), by
// comparing the desired object with the fields its field manager owns there (its managedFields
// entry, FieldsV1), in both directions:
//   - every field of the desired object is owned by this manager and holds the desired value, and
//   - every field this manager owns is still in the desired object (nothing to release).
//
// Anything else means an apply: someone else changed or took a field (an Update that changes a
// field moves its ownership away from us), or the desired object gained or dropped a field. Fields
// others own (status written by CloudNativePG or ESO, labels added by GitOps tools) are not looked
// at, so their writes cost nothing; and since nothing is remembered in memory, neither does a
// restart.
package apply

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Applier applies objects under one field manager.
type Applier struct {
	Client     client.Client
	FieldOwner string
	// ClearLabels are labels an applied object must not carry unless the desired object sets them,
	// although this field manager does not own them (another step added them with a patch: the
	// Tenant controller's retain transform adds the retained label). Apply removes them.
	ClearLabels []string
}

// New returns an Applier for the given field manager.
func New(c client.Client, fieldOwner string) *Applier {
	return &Applier{Client: c, FieldOwner: fieldOwner}
}

// Apply makes obj exist as desired. obj must be a typed (or unstructured) object with its fields
// set as desired; it is not modified. It reports whether a write was issued.
func (a *Applier) Apply(ctx context.Context, obj client.Object) (bool, error) {
	gvk, err := a.Client.GroupVersionKindFor(obj)
	if err != nil {
		return false, err
	}
	u, err := toApplyRequest(obj, gvk)
	if err != nil {
		return false, err
	}
	current, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return false, fmt.Errorf("%s is not a client.Object", gvk.Kind)
	}
	switch err := a.Client.Get(ctx, client.ObjectKeyFromObject(obj), current); {
	case err == nil:
		if err := a.clearLabels(ctx, u, current); err != nil {
			return true, err
		}
		why, err := Difference(u, current, a.FieldOwner)
		if err != nil {
			return false, err
		}
		if why == "" {
			return false, nil
		}
		log.FromContext(ctx).V(1).Info("applying", "kind", gvk.Kind, "object", qualified(obj), "because", why)
	case apierrors.IsNotFound(err):
		// Absent from the cache: new, deleted by someone, or made so recently that the cache has not
		// seen it yet (which the log line makes visible: it is a write that changes nothing).
		log.FromContext(ctx).V(1).Info("applying", "kind", gvk.Kind, "object", qualified(obj), "because", "absent from the cache")
	default:
		return false, fmt.Errorf("get %s %s: %w", gvk.Kind, qualified(obj), err)
	}
	if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(a.FieldOwner), client.ForceOwnership); err != nil {
		return true, fmt.Errorf("apply %s %s: %w", gvk.Kind, qualified(obj), err)
	}
	return true, nil
}

// clearLabels removes from live the ClearLabels that desired does not set, with a merge patch under
// an optimistic lock.
func (a *Applier) clearLabels(ctx context.Context, desired *unstructured.Unstructured, live client.Object) error {
	var stale []string
	for _, l := range a.ClearLabels {
		if _, has := live.GetLabels()[l]; has {
			if _, want := desired.GetLabels()[l]; !want {
				stale = append(stale, l)
			}
		}
	}
	if len(stale) == 0 {
		return nil
	}
	patch := client.MergeFromWithOptions(live.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	labels := live.GetLabels()
	for _, l := range stale {
		delete(labels, l)
	}
	live.SetLabels(labels)
	if err := a.Client.Patch(ctx, live, patch); err != nil {
		return fmt.Errorf("remove labels %v from %s: %w", stale, qualified(live), err)
	}
	return nil
}

// Delete removes obj if it exists, and forgets it.
func (a *Applier) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) (bool, error) {
	gvk, err := a.Client.GroupVersionKindFor(obj)
	if err != nil {
		return false, err
	}
	if err := a.Client.Delete(ctx, obj, opts...); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return true, fmt.Errorf("delete %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return true, nil
}

// Prune deletes the objects of list's kind that carry the selector's labels but are not in keep
// (names, qualified by namespace for namespaced kinds: "namespace/name"). Call it only after a
// successful apply pass, so that a failed pass never deletes what it failed to rewrite.
func (a *Applier) Prune(ctx context.Context, list client.ObjectList, selector labels.Selector, keep map[string]bool) (int, error) {
	if err := a.Client.List(ctx, list, client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return 0, fmt.Errorf("list for pruning: %w", err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return 0, err
	}
	pruned := 0
	for _, item := range items {
		obj, ok := item.(client.Object)
		if !ok || keep[Name(obj)] || obj.GetDeletionTimestamp() != nil {
			continue
		}
		deleted, err := a.Delete(ctx, obj)
		if err != nil {
			return pruned, err
		}
		if deleted {
			pruned++
		}
	}
	return pruned, nil
}

// Name is the key Prune's keep set uses for obj.
func Name(obj client.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

// toApplyRequest turns a typed object into the body of an apply request: its desired fields, with
// the server-owned ones (status, creationTimestamp, resourceVersion, ...) left out.
func toApplyRequest(obj runtime.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "deletionTimestamp", "selfLink"} {
			delete(md, f)
		}
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

func qualified(obj client.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}
