package controllers

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// internLimit bounds each interning table: what it holds is never freed, so a cluster with an
// unexpected variety of label keys or field sets costs at most this many entries, after which new
// values are simply not shared.
const internLimit = 16384

// interner shares one copy of the short strings every tenant's cached objects repeat: label and
// annotation keys and values (a tenant's name is on each of its objects), owner references' API
// version and kind, and the field manager's name, operation and API version. Decoding gives each
// object its own copy of every one of them, about 250 bytes per object.
//
// The operator's FieldsV1 set, although the largest part of a cached object's metadata, is not
// shared: it names the owner reference by the Tenant's UID, so no two tenants' sets are equal.
type interner struct {
	mu   sync.Mutex
	text map[string]string
}

func newInterner() *interner {
	return &interner{text: map[string]string{}}
}

func (i *interner) str(s string) string {
	if s == "" {
		return s
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if v, ok := i.text[s]; ok {
		return v
	}
	if len(i.text) < internLimit {
		i.text[s] = s
	}
	return s
}

func (i *interner) labels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[i.str(k)] = i.str(v)
	}
	return out
}

// meta replaces the repeated parts of an object's metadata with their shared copies.
func (i *interner) meta(m metav1.Object) {
	m.SetLabels(i.labels(m.GetLabels()))
	m.SetAnnotations(i.labels(m.GetAnnotations()))
	if refs := m.GetOwnerReferences(); len(refs) > 0 {
		for j := range refs {
			refs[j].APIVersion = i.str(refs[j].APIVersion)
			refs[j].Kind = i.str(refs[j].Kind)
		}
	}
	if fields := m.GetManagedFields(); len(fields) > 0 {
		for j := range fields {
			e := &fields[j]
			e.Manager = i.str(e.Manager)
			e.APIVersion = i.str(e.APIVersion)
			e.FieldsType = i.str(e.FieldsType)
			e.Operation = metav1.ManagedFieldsOperationType(i.str(string(e.Operation)))
		}
	}
}
