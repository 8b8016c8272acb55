package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// snapshotKinds are the kinds a tenant's state is made of: the Tenant, what the operator writes
// (its inventory, less CloudNativePG's kinds: no database here), what ESO writes from it, and the
// customer's own data in the namespace.
var snapshotKinds = []schema.GroupVersionKind{
	{Group: "tenancy.tenantctl.io", Version: "v1alpha1", Kind: "Tenant"},
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "ResourceQuota"},
	{Version: "v1", Kind: "LimitRange"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "ConfigMap"},
	{Group: "external-secrets.io", Version: "v1", Kind: "SecretStore"},
	{Group: "external-secrets.io", Version: "v1", Kind: "ExternalSecret"},
}

// customerData is the ConfigMap the customer keeps in its namespace: data the operator must never
// lose.
const customerData = "customer-data"

// object is one object of a run's end state, normalised so that the same object in two runs
// compares equal: the run's prefix replaced, what the API server sets dropped, Secrets reduced to
// their keys (values are never read into the report).
type object struct {
	key    string // kind namespace/name
	tenant string // the tenant it belongs to (normalised), "" if none
	body   string // canonical JSON
}

// state is a run's end state: its objects by key, and the Vault policies and roles of its tenants.
type state map[string]object

// snapshot reads the end state of the run with the given prefix.
func snapshot(ctx context.Context, c client.Client, vault *testenv.Vault, prefix string) (state, error) {
	st := state{}
	for _, gvk := range snapshotKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			tenant := u.GetLabels()[tenancyv1alpha1.LabelTenant]
			inRun := strings.HasPrefix(tenant, prefix+"-") || strings.HasPrefix(u.GetNamespace(), "tenant-"+prefix+"-") ||
				(gvk.Kind == "Tenant" && strings.HasPrefix(u.GetName(), prefix+"-")) ||
				(gvk.Kind == "Namespace" && strings.HasPrefix(u.GetName(), "tenant-"+prefix+"-"))
			if !inRun {
				continue
			}
			if tenant == "" && gvk.Kind == "Tenant" {
				tenant = u.GetName()
			}
			if tenant == "" && u.GetNamespace() != "" {
				tenant = strings.TrimPrefix(u.GetNamespace(), "tenant-")
			}
			if gvk.Kind == "ConfigMap" && u.GetName() != customerData || gvk.Kind == "ServiceAccount" && u.GetName() == "default" {
				continue // the control plane's own (kube-root-ca.crt, the default ServiceAccount)
			}
			o, err := normalise(u, prefix)
			if err != nil {
				return nil, err
			}
			o.tenant = strings.ReplaceAll(tenant, prefix, "RUN")
			st[o.key] = o
		}
	}
	for _, list := range []struct{ kind, path string }{
		{"VaultPolicy", "sys/policies/acl?list=true"},
		{"VaultRole", "auth/kubernetes/role?list=true"},
	} {
		code, body, err := vault.Do(ctx, http.MethodGet, list.path, "")
		if err != nil {
			return nil, err
		}
		if code == http.StatusNotFound {
			continue
		}
		var resp struct {
			Data struct {
				Keys []string `json:"keys"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			return nil, fmt.Errorf("list %s: %w", list.kind, err)
		}
		for _, name := range resp.Data.Keys {
			if !strings.HasPrefix(name, "tenant-"+prefix+"-") {
				continue
			}
			norm := strings.ReplaceAll(name, prefix, "RUN")
			tenant := norm[strings.Index(norm, "RUN-"):]
			if i := strings.Index(tenant[len("RUN-"):], "-"); i >= 0 {
				tenant = tenant[:len("RUN-")+i]
			}
			st[list.kind+" "+norm] = object{key: list.kind + " " + norm, tenant: tenant}
		}
	}
	return st, nil
}

// normalise keeps what a user would compare between two runs.
func normalise(u *unstructured.Unstructured, prefix string) (object, error) {
	obj := u.DeepCopy().Object
	md, _ := obj["metadata"].(map[string]any)
	for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"} {
		delete(md, f)
	}
	if refs, ok := md["ownerReferences"].([]any); ok {
		for _, r := range refs {
			delete(r.(map[string]any), "uid")
		}
	}
	switch u.GetKind() {
	case "Tenant":
		// Of the status, what a user waits on: the phase and each condition's verdict.
		status, _ := obj["status"].(map[string]any)
		conds := []string{}
		for _, c := range asList(status["conditions"]) {
			cm := c.(map[string]any)
			conds = append(conds, fmt.Sprintf("%v=%v/%v", cm["type"], cm["status"], cm["reason"]))
		}
		sort.Strings(conds)
		obj["status"] = map[string]any{"phase": status["phase"], "conditions": conds}
	case "Secret":
		data, _ := obj["data"].(map[string]any)
		keys := []string{}
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		obj["data"] = keys
		delete(md, "annotations") // ESO's hashes of the values
		delete(obj, "status")
	default:
		delete(obj, "status")
	}
	// ESO's own marks hash the ExternalSecret's identity and the values.
	for _, field := range []string{"annotations", "labels"} {
		if m, ok := md[field].(map[string]any); ok {
			for k := range m {
				if strings.HasPrefix(k, "reconcile.external-secrets.io/") {
					delete(m, k)
				}
			}
		}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return object{}, err
	}
	body := strings.ReplaceAll(string(data), prefix, "RUN")
	key := strings.ReplaceAll(fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName()), prefix, "RUN")
	return object{key: key, body: body}, nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// comparison is what comparing a run's end state with the undisturbed run's found.
type comparison struct {
	compared             int
	missing, extra, diff []string
	dataLost             []string
}

// compare compares a run's end state with the undisturbed run's.
func compare(calm, run state) comparison {
	var c comparison
	for key, want := range calm {
		c.compared++
		got, ok := run[key]
		switch {
		case !ok && strings.HasPrefix(key, "ConfigMap ") && strings.HasSuffix(key, "/"+customerData):
			c.dataLost = append(c.dataLost, key)
		case !ok:
			c.missing = append(c.missing, key)
		case got.body != want.body:
			c.diff = append(c.diff, key+"\n    undisturbed: "+want.body+"\n    under faults: "+got.body)
		}
	}
	for key := range run {
		if _, ok := calm[key]; !ok {
			c.extra = append(c.extra, key)
		}
	}
	sort.Strings(c.missing)
	sort.Strings(c.extra)
	sort.Strings(c.diff)
	sort.Strings(c.dataLost)
	return c
}

// invariants checks a run's end state on its own, whatever the undisturbed run did: one namespace
// per tenant; nothing left for a tenant deleted under Delete; for a tenant deleted under Retain,
// nothing outside its namespace but its Vault policy and role (access goes under both policies);
// the customer's data in every namespace that is there.
func invariants(st state, present map[string]bool, policy map[string]string) (duplicates, orphans, dataLost []string) {
	namespaces := map[string]int{}
	for _, o := range st {
		if strings.HasPrefix(o.key, "Namespace ") {
			namespaces[o.tenant]++
		}
	}
	for tenant, n := range namespaces {
		if n > 1 {
			duplicates = append(duplicates, fmt.Sprintf("tenant %s has %d namespaces", tenant, n))
		}
	}
	for _, o := range st {
		if o.tenant == "" || present[o.tenant] {
			continue
		}
		kind := strings.Fields(o.key)[0]
		retainedHere := policy[o.tenant] == "Retain" && (strings.Contains(o.key, " tenant-"+o.tenant+"/") ||
			o.key == "Namespace /tenant-"+o.tenant || kind == "VaultPolicy" || kind == "VaultRole")
		if !retainedHere {
			orphans = append(orphans, o.key+" (tenant "+o.tenant+" deleted under "+policy[o.tenant]+")")
		}
	}
	for tenant := range namespaces {
		if _, ok := st["ConfigMap tenant-"+tenant+"/"+customerData]; !ok {
			dataLost = append(dataLost, "the customer's "+customerData+" in tenant-"+tenant)
		}
	}
	sort.Strings(duplicates)
	sort.Strings(orphans)
	sort.Strings(dataLost)
	return duplicates, orphans, dataLost
}
