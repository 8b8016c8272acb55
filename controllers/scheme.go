// Package controllers assembles the manager: its scheme, cache options and controllers. main.go and
// the test suites build the manager through it, so tests run what production runs.
package controllers

import (
	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
)

// NewScheme returns a scheme with the built-in types, ours, CloudNativePG's and External Secrets
// Operator's (through a mirror of the fields we use: see package externalsecrets).
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(tenancyv1alpha1.AddToScheme(s))
	utilruntime.Must(cnpgv1.AddToScheme(s))
	utilruntime.Must(externalsecrets.AddToScheme(s))
	return s
}
