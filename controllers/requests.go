package controllers

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// apiRequests counts every request the operator sends to the API server, as the API server would
// name it. client-go's rest_client_requests_total counts by HTTP method only, so an informer
// renewing its watch (every informer does, every 5 to 10 minutes, whatever the number of tenants)
// cannot be told from a read, nor a list from a get; this can.
var apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tenant_operator_api_requests_total",
	Help: "Requests the operator sent to the Kubernetes API server, by verb as the API server names it " +
		"(get, list, watch, create, update, patch, delete, deletecollection) and resource (with its subresource: tenants/status).",
}, []string{"verb", "resource"})

// countRequests is a transport that counts each request in apiRequests.
type countRequests struct{ next http.RoundTripper }

func (c countRequests) RoundTrip(req *http.Request) (*http.Response, error) {
	verb, resource := describeRequest(req)
	apiRequests.WithLabelValues(verb, resource).Inc()
	return c.next.RoundTrip(req)
}

// describeRequest names a request's verb and resource by the API server's rules (its RequestInfo):
// a GET of a collection is a list, and a watch when it asks to watch; a namespace's status and
// finalize are its subresources. Paths that name no resource (discovery, /version) are
// "(non-resource)".
func describeRequest(req *http.Request) (verb, resource string) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var rest []string
	switch {
	case len(parts) > 2 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) > 3 && parts[0] == "apis":
		rest = parts[3:]
	default:
		return strings.ToLower(req.Method), "(non-resource)"
	}
	if len(rest) > 2 && rest[0] == "namespaces" && rest[2] != "status" && rest[2] != "finalize" {
		rest = rest[2:] // a namespaced resource
	}
	resource = rest[0]
	named := len(rest) > 1
	if len(rest) > 2 {
		resource += "/" + rest[2]
	}
	switch req.Method {
	case http.MethodGet:
		switch w := req.URL.Query().Get("watch"); {
		case w == "true" || w == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb, resource
}
