// Package apply writes managed objects with server-side apply, and only when needed.
//
// Steady state must cost nothing: a pass that finds every object as desired issues no write. Like
// Cluster API's SSA cache, the Applier remembers, per object, the hash of the last request it
// applied and the resourceVersion and generation the apiserver answered with. The apply is skipped
// when the desired object hashes the same and the informer cache shows nothing changed since:
//   - the same resourceVersion (nothing at all changed), or
//   - for kinds that keep a generation, the same generation (the spec is as applied) with every
//     label, annotation and owner reference applied still in place. Other controllers write these
//     objects' status all the time (ESO refreshes an ExternalSecret's status on every sync,
//     CloudNativePG a Cluster's), which moves the resourceVersion but not the generation; answering
//     each of those with a write is what this avoids (make test-cluster counts the writes).
//
// Any edit of the spec by someone else moves the generation, and any edit of the metadata removes
// something applied, so drift is always re-applied. After a restart the memory is empty and each
// object is applied once (a no-op for the apiserver), then remembered.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Applier applies objects under one field manager.
type Applier struct {
	Client     client.Client
	FieldOwner string

	mu      sync.Mutex
	applied map[key]record
}

type key struct {
	gvk             schema.GroupVersionKind
	namespace, name string
}

type record struct {
	resourceVersion string
	generation      int64
	hash            string
}

// New returns an Applier for the given field manager.
func New(c client.Client, fieldOwner string) *Applier {
	return &Applier{Client: c, FieldOwner: fieldOwner, applied: map[key]record{}}
}

// Apply makes obj exist as desired. obj must be a typed object with its fields set as desired; it
// is not modified. It reports whether a write was issued.
func (a *Applier) Apply(ctx context.Context, obj client.Object) (bool, error) {
	gvk, err := a.Client.GroupVersionKindFor(obj)
	if err != nil {
		return false, err
	}
	u, err := toApplyRequest(obj, gvk)
	if err != nil {
		return false, err
	}
	hash, err := hashOf(u)
	if err != nil {
		return false, err
	}
	k := key{gvk: gvk, namespace: obj.GetNamespace(), name: obj.GetName()}

	current, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return false, fmt.Errorf("%s is not a client.Object", gvk.Kind)
	}
	switch err := a.Client.Get(ctx, client.ObjectKeyFromObject(obj), current); {
	case err == nil:
		if unchanged(a.remembered(k), hash, u, current) {
			return false, nil
		}
	case apierrors.IsNotFound(err):
	default:
		return false, fmt.Errorf("get %s %s: %w", gvk.Kind, k.name, err)
	}

	if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(a.FieldOwner), client.ForceOwnership); err != nil {
		return true, fmt.Errorf("apply %s %s: %w", gvk.Kind, qualified(k), err)
	}
	a.remember(k, record{resourceVersion: u.GetResourceVersion(), generation: u.GetGeneration(), hash: hash})
	return true, nil
}

// unchanged reports whether the live object is still as last applied (see the package comment).
func unchanged(last record, hash string, desired *unstructured.Unstructured, live client.Object) bool {
	if last.hash == "" || last.hash != hash {
		return false
	}
	if last.resourceVersion == live.GetResourceVersion() {
		return true
	}
	return live.GetGeneration() != 0 && live.GetGeneration() == last.generation && metadataHolds(desired, live)
}

// metadataHolds reports whether every label, annotation and owner reference of desired is on live.
func metadataHolds(desired *unstructured.Unstructured, live client.Object) bool {
	for _, m := range []struct{ want, have map[string]string }{
		{desired.GetLabels(), live.GetLabels()}, {desired.GetAnnotations(), live.GetAnnotations()},
	} {
		for k, v := range m.want {
			if got, ok := m.have[k]; !ok || got != v {
				return false
			}
		}
	}
	for _, want := range desired.GetOwnerReferences() {
		found := false
		for _, have := range live.GetOwnerReferences() {
			if have.UID == want.UID && have.Kind == want.Kind && have.Name == want.Name &&
				ptrEqual(have.Controller, want.Controller) && ptrEqual(have.BlockOwnerDeletion, want.BlockOwnerDeletion) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func ptrEqual(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// Delete removes obj if it exists, and forgets it.
func (a *Applier) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) (bool, error) {
	gvk, err := a.Client.GroupVersionKindFor(obj)
	if err != nil {
		return false, err
	}
	a.forget(key{gvk: gvk, namespace: obj.GetNamespace(), name: obj.GetName()})
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

func (a *Applier) remembered(k key) record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied[k]
}

func (a *Applier) remember(k key, r record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied[k] = r
}

func (a *Applier) forget(k key) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.applied, k)
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

func hashOf(u *unstructured.Unstructured) (string, error) {
	data, err := json.Marshal(u.Object) // map keys are sorted: the hash is stable
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func qualified(k key) string {
	if k.namespace == "" {
		return k.name
	}
	return k.namespace + "/" + k.name
}
