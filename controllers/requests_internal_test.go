package controllers

import (
	"net/http"
	"testing"
)

func TestDescribeRequest(t *testing.T) {
	cases := []struct {
		method, url    string
		verb, resource string
	}{
		{"GET", "/api/v1/namespaces/tenant-a", "get", "namespaces"},
		{"GET", "/api/v1/namespaces", "list", "namespaces"},
		{"GET", "/api/v1/namespaces?labelSelector=x&watch=true", "watch", "namespaces"},
		{"PUT", "/api/v1/namespaces/tenant-a/finalize", "update", "namespaces/finalize"},
		{"PATCH", "/api/v1/namespaces/tenant-a/resourcequotas/tenant-quota?fieldManager=m&force=true", "patch", "resourcequotas"},
		{"GET", "/api/v1/namespaces/tenant-a/secrets", "list", "secrets"},
		{"GET", "/apis/tenancy.tenantctl.io/v1alpha1/tenants?watch=1", "watch", "tenants"},
		{"PATCH", "/apis/tenancy.tenantctl.io/v1alpha1/tenants/acme/status", "patch", "tenants/status"},
		{"PATCH", "/apis/tenancy.tenantctl.io/v1alpha1/tenants/acme", "patch", "tenants"},
		{"POST", "/apis/events.k8s.io/v1/namespaces/default/events", "create", "events"},
		{"DELETE", "/apis/rbac.authorization.k8s.io/v1/namespaces/tenant-a/rolebindings/tenancy:x", "delete", "rolebindings"},
		{"DELETE", "/apis/rbac.authorization.k8s.io/v1/namespaces/tenant-a/rolebindings", "deletecollection", "rolebindings"},
		{"POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", "create", "subjectaccessreviews"},
		{"POST", "/api/v1/namespaces/ops/serviceaccounts/op/token", "create", "serviceaccounts/token"},
		{"GET", "/apis", "get", "(non-resource)"},
		{"GET", "/apis/tenancy.tenantctl.io/v1alpha1", "get", "(non-resource)"},
		{"GET", "/version", "get", "(non-resource)"},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(tc.method, "https://apiserver.example"+tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if verb, resource := describeRequest(req); verb != tc.verb || resource != tc.resource {
			t.Errorf("%s %s: %s %s, want %s %s", tc.method, tc.url, verb, resource, tc.verb, tc.resource)
		}
	}
}
