// Package v1 stands in for k8s.io/api/core/v1 in secretlog's test: only the Secret's shape matters.
package v1

type Secret struct {
	Name       string
	Data       map[string][]byte
	StringData map[string]string
}
