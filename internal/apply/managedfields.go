package apply

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Difference reports why applying desired as manager would change something on live, naming the
// first field concerned, or "" when it would change nothing: every field of desired is owned by
// manager on live with the desired value, and manager owns no field that desired has dropped. It
// reads only live's managedFields and values, so it needs no schema: FieldsV1 names map keys
// ("f:name"), keyed list items ("k:{...}"), set items ("v:...") and list positions ("i:N"). When in
// doubt it reports a difference (an apply is always correct, only not free).
func Difference(desired *unstructured.Unstructured, live client.Object, manager string) (string, error) {
	var fields map[string]any
	for _, e := range live.GetManagedFields() {
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &fields); err != nil {
			return "", fmt.Errorf("managedFields of %s: %w", live.GetName(), err)
		}
	}
	if fields == nil {
		return "(no fields owned by " + manager + ")", nil
	}
	liveMap, err := toMap(live)
	if err != nil {
		return "", err
	}
	want := requestFields(desired.Object)
	if p := coversAt("", want, liveMap, fields); p != "" {
		return p, nil
	}
	if !ownsOnly(fields, want) {
		return "(a field to release)", nil
	}
	return "", nil
}

// requestFields is the part of an apply request that field ownership tracks: not the type and the
// object's identity.
func requestFields(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "apiVersion" && k != "kind" {
			out[k] = v
		}
	}
	if md, ok := out["metadata"].(map[string]any); ok {
		trimmed := make(map[string]any, len(md))
		for k, v := range md {
			if k != "name" && k != "namespace" {
				trimmed[k] = v
			}
		}
		out["metadata"] = trimmed
	}
	return out
}

func toMap(obj client.Object) (map[string]any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.Object, nil
	}
	return runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
}

// children are a FieldsV1 node's entries, without "." (which marks the node itself as owned).
func children(node map[string]any) map[string]any {
	out := make(map[string]any, len(node))
	for k, v := range node {
		if k != "." {
			out[k] = v
		}
	}
	return out
}

func asNode(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// covers: every field of want is owned (per node) and equal on live.
// coversAt returns the path of the first field of want that is not owned with its value on live
// ("" when there is none).
func coversAt(path string, want, live any, node map[string]any) string {
	kids := children(node)
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			if len(w) == 0 && live == nil && len(kids) == 0 {
				return ""
			}
			return path + " (absent)"
		}
		if len(kids) == 0 && len(w) > 0 {
			return unequal(path, w, l) // an atomic map
		}
		for k, v := range w {
			if m, ok := v.(map[string]any); v == nil || (ok && len(m) == 0) {
				continue // null or an empty map in a request claims nothing
			}
			child, ok := kids["f:"+k]
			if !ok {
				return path + "." + k + " (not owned)"
			}
			if p := coversAt(path+"."+k, v, l[k], asNode(child)); p != "" {
				return p
			}
		}
		return ""
	case []any:
		l, _ := live.([]any)
		if len(kids) == 0 {
			return unequal(path, w, l) // an atomic list
		}
		for i, item := range w {
			key, liveItem, ok := findItem(kids, item, l)
			if !ok {
				return fmt.Sprintf("%s[%d] (not owned)", path, i)
			}
			if p := coversAt(fmt.Sprintf("%s[%d]", path, i), item, liveItem, asNode(kids[key])); p != "" {
				return p
			}
		}
		return ""
	default:
		return unequal(path, want, live)
	}
}

// unequal compares a value this manager owns as a whole (a leaf, or an atomic list or map) with
// live. Live may hold more than was applied, where the apiserver filled in defaults (CRD schema
// defaults inside atomic lists): every field of want must be on live with its value, lists item by
// item. A field someone else sets inside an atomic value takes the whole value from this manager,
// which the ownership check sees.
func unequal(path string, want, live any) string {
	if subset(want, live) {
		return ""
	}
	return path + " (changed)"
}

func subset(want, live any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return len(w) == 0 && live == nil
		}
		for k, v := range w {
			if v != nil && !subset(v, l[k]) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return len(w) == 0 && live == nil
		}
		for i := range w {
			if !subset(w[i], l[i]) {
				return false
			}
		}
		return true
	default:
		return equalJSON(want, live)
	}
}

// findItem finds the FieldsV1 entry that names a desired list item, and the live item it names.
func findItem(kids map[string]any, item any, live []any) (string, any, bool) {
	for key := range kids {
		if _, ok := lookup(key, []any{item}); ok {
			l, found := lookup(key, live)
			return key, l, found
		}
	}
	return "", nil, false
}

// lookup finds the item of list that a FieldsV1 list key ("k:{...}" or "v:...") names.
func lookup(key string, list []any) (any, bool) {
	switch {
	case strings.HasPrefix(key, "k:"):
		var fields map[string]any
		if json.Unmarshal([]byte(key[2:]), &fields) != nil {
			return nil, false
		}
		for _, l := range list {
			if matches(l, fields) {
				return l, true
			}
		}
	case strings.HasPrefix(key, "v:"):
		var v any
		if json.Unmarshal([]byte(key[2:]), &v) != nil {
			return nil, false
		}
		for _, l := range list {
			if equalJSON(l, v) {
				return l, true
			}
		}
	}
	return nil, false
}

// matches says whether a list item has every key field's value.
func matches(item any, fields map[string]any) bool {
	m, ok := item.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range fields {
		if !equalJSON(m[k], v) {
			return false
		}
	}
	return true
}

// ownsOnly: every field in node is still in want (the manager has nothing to release).
func ownsOnly(node map[string]any, want any) bool {
	for key, child := range children(node) {
		switch {
		case strings.HasPrefix(key, "f:"):
			w, ok := want.(map[string]any)
			if !ok {
				return false
			}
			v, ok := w[key[2:]]
			if !ok || v == nil || !ownsOnly(asNode(child), v) {
				return false
			}
		case strings.HasPrefix(key, "k:"), strings.HasPrefix(key, "v:"):
			w, ok := want.([]any)
			if !ok {
				return false
			}
			item, found := lookup(key, w)
			if !found || !ownsOnly(asNode(child), item) {
				return false
			}
		default:
			return false // "i:N" and anything unknown: apply, to be safe
		}
	}
	return true
}

// equalJSON compares two values as JSON, so that int64 and float64 or typed and unstructured
// encodings of the same value are equal.
func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
