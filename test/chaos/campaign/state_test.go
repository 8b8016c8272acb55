package campaign

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The campaign's verdicts are only as good as its comparison: these tests show that what a user
// would call a difference is one, and that what only the API server sets is not.

func mustNormalise(t *testing.T, prefix string, obj map[string]any) object {
	t.Helper()
	o, err := normalise(&unstructured.Unstructured{Object: obj}, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func namespace(prefix, uid, rv, team string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{
			"name": "tenant-" + prefix + "-t01", "uid": uid, "resourceVersion": rv,
			"creationTimestamp": "2026-11-30T10:00:00Z",
			"labels":            map[string]any{"tenancy.tenantctl.io/tenant": prefix + "-t01", "team": team},
			"managedFields":     []any{map[string]any{"manager": "tenant-operator", "operation": "Apply"}},
		},
		"status": map[string]any{"phase": "Active"},
	}
}

func TestNormaliseKeepsWhatAUserComparesAcrossRuns(t *testing.T) {
	calm := mustNormalise(t, "calm", namespace("calm", "uid-1", "100", "a"))
	faults := mustNormalise(t, "crash", namespace("crash", "uid-2", "987", "a"))
	if calm.key != "Namespace /tenant-RUN-t01" || calm.key != faults.key {
		t.Errorf("keys %q and %q: want both Namespace /tenant-RUN-t01", calm.key, faults.key)
	}
	if calm.body != faults.body {
		t.Errorf("the same namespace in two runs differs only in what the API server set, yet:\n%s\n%s", calm.body, faults.body)
	}
	edited := mustNormalise(t, "crash", namespace("crash", "uid-2", "987", "b"))
	if edited.body == calm.body {
		t.Errorf("a label a user set differently compares equal: %s", edited.body)
	}
}

func TestNormaliseReducesATenantToItsVerdictsAndASecretToItsKeys(t *testing.T) {
	tenant := func(reason, since string) map[string]any {
		return map[string]any{
			"apiVersion": "tenancy.tenantctl.io/v1alpha1", "kind": "Tenant",
			"metadata": map[string]any{"name": "calm-t01"},
			"status": map[string]any{
				"phase":              "Ready",
				"observedGeneration": int64(3),
				"conditions": []any{map[string]any{
					"type": "Ready", "status": "True", "reason": reason, "lastTransitionTime": since, "message": "m",
				}},
			},
		}
	}
	a := mustNormalise(t, "calm", tenant("Provisioned", "2026-11-30T10:00:00Z"))
	b := mustNormalise(t, "calm", tenant("Provisioned", "2026-11-30T11:11:11Z"))
	if a.body != b.body {
		t.Errorf("a condition's time is not a user's verdict, yet the Tenants differ:\n%s\n%s", a.body, b.body)
	}
	if c := mustNormalise(t, "calm", tenant("VaultUnavailable", "2026-11-30T10:00:00Z")); c.body == a.body {
		t.Errorf("a different reason compares equal: %s", c.body)
	}

	secret := func(value string) map[string]any {
		return map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{
				"name": "api-keys", "namespace": "tenant-calm-t01",
				"annotations": map[string]any{"reconcile.external-secrets.io/data-hash": value + "-hash"},
			},
			"data": map[string]any{"token": value},
		}
	}
	s1 := mustNormalise(t, "calm", secret("c2VjcmV0LW9uZQ=="))
	s2 := mustNormalise(t, "calm", secret("c2VjcmV0LXR3bw=="))
	if strings.Contains(s1.body, "c2VjcmV0") || strings.Contains(s1.body, "hash") {
		t.Errorf("a Secret's value reached the report: %s", s1.body)
	}
	if !strings.Contains(s1.body, `"token"`) || s1.body != s2.body {
		t.Errorf("Secrets compare by their keys only: %s, %s", s1.body, s2.body)
	}
}

func TestCompareReportsMissingExtraDifferentAndLostData(t *testing.T) {
	obj := func(key, body string) object { return object{key: key, body: body} }
	calm := state{
		"Namespace /tenant-RUN-t01":                obj("Namespace /tenant-RUN-t01", "ns"),
		"ResourceQuota tenant-RUN-t01/quota":       obj("ResourceQuota tenant-RUN-t01/quota", "cpu: 2"),
		"LimitRange tenant-RUN-t01/limits":         obj("LimitRange tenant-RUN-t01/limits", "lr"),
		"ConfigMap tenant-RUN-t01/" + customerData: obj("ConfigMap tenant-RUN-t01/"+customerData, "data"),
	}
	same := state{}
	for k, v := range calm {
		same[k] = v
	}
	if c := compare(calm, same); c.compared != 4 || len(c.missing)+len(c.extra)+len(c.diff)+len(c.dataLost) != 0 {
		t.Fatalf("identical states: %+v", c)
	}

	run := state{
		"Namespace /tenant-RUN-t01":          obj("Namespace /tenant-RUN-t01", "ns"),
		"ResourceQuota tenant-RUN-t01/quota": obj("ResourceQuota tenant-RUN-t01/quota", "cpu: 4"),
		"Namespace /tenant-RUN-t01-b":        obj("Namespace /tenant-RUN-t01-b", "ns"),
	}
	c := compare(calm, run)
	if !slices.Equal(c.missing, []string{"LimitRange tenant-RUN-t01/limits"}) {
		t.Errorf("missing = %q", c.missing)
	}
	if !slices.Equal(c.extra, []string{"Namespace /tenant-RUN-t01-b"}) {
		t.Errorf("extra = %q", c.extra)
	}
	if len(c.diff) != 1 || !strings.HasPrefix(c.diff[0], "ResourceQuota tenant-RUN-t01/quota") ||
		!strings.Contains(c.diff[0], "cpu: 2") || !strings.Contains(c.diff[0], "cpu: 4") {
		t.Errorf("diff = %q", c.diff)
	}
	if !slices.Equal(c.dataLost, []string{"ConfigMap tenant-RUN-t01/" + customerData}) {
		t.Errorf("dataLost = %q", c.dataLost)
	}
}

func TestInvariantsFindDuplicatesOrphansAndLostData(t *testing.T) {
	st := state{}
	add := func(key, tenant string) { st[key] = object{key: key, tenant: tenant} }
	// RUN-t00 is present and whole.
	add("Tenant /RUN-t00", "RUN-t00")
	add("Namespace /tenant-RUN-t00", "RUN-t00")
	add("ConfigMap tenant-RUN-t00/"+customerData, "RUN-t00")
	// RUN-t01 was deleted under Retain: its namespace, what is in it and its Vault access may stay,
	// a cluster-wide object may not.
	add("Namespace /tenant-RUN-t01", "RUN-t01")
	add("ConfigMap tenant-RUN-t01/"+customerData, "RUN-t01")
	add("ResourceQuota tenant-RUN-t01/quota", "RUN-t01")
	add("VaultPolicy /tenant-RUN-t01", "RUN-t01")
	add("ClusterRole /tenant-RUN-t01-admin", "RUN-t01")
	// RUN-t02 was deleted under Delete: nothing may stay.
	add("VaultRole /tenant-RUN-t02", "RUN-t02")
	// RUN-t03 is present with two namespaces, one without the customer's data.
	add("Namespace /tenant-RUN-t03", "RUN-t03")
	add("Namespace /tenant-RUN-t03-x", "RUN-t03")

	present := map[string]bool{"RUN-t00": true, "RUN-t03": true}
	policy := map[string]string{"RUN-t01": "Retain", "RUN-t02": "Delete"}
	duplicates, orphans, dataLost := invariants(st, present, policy)
	if !slices.Equal(duplicates, []string{"tenant RUN-t03 has 2 namespaces"}) {
		t.Errorf("duplicates = %q", duplicates)
	}
	wantOrphans := []string{
		"ClusterRole /tenant-RUN-t01-admin (tenant RUN-t01 deleted under Retain)",
		"VaultRole /tenant-RUN-t02 (tenant RUN-t02 deleted under Delete)",
	}
	if !slices.Equal(orphans, wantOrphans) {
		t.Errorf("orphans = %q, want %q", orphans, wantOrphans)
	}
	if !slices.Equal(dataLost, []string{"the customer's " + customerData + " in tenant-RUN-t03"}) {
		t.Errorf("dataLost = %q", dataLost)
	}

	delete(st, "ClusterRole /tenant-RUN-t01-admin")
	delete(st, "VaultRole /tenant-RUN-t02")
	delete(st, "Namespace /tenant-RUN-t03-x")
	add("ConfigMap tenant-RUN-t03/"+customerData, "RUN-t03")
	if d, o, l := invariants(st, present, policy); len(d)+len(o)+len(l) != 0 {
		t.Errorf("a sound state: duplicates %q, orphans %q, data lost %q", d, o, l)
	}
}
