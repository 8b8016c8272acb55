package tenant

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/isolation"
	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/config"
)

// Desired is every Kubernetes object a valid tenant turns into under the configuration, in the order
// the reconciler applies them: the namespace, its isolation, access, the database and the secrets
// (Vault's policy and role are not Kubernetes objects and are not listed). It is the same builders
// the reconciler calls, with no client: the benchmark's raw floor (test/bench) creates exactly these
// objects to measure what the apiserver alone costs.
func Desired(t *tenancyv1alpha1.Tenant, cfg config.Config) []client.Object {
	r := &Reconciler{Config: cfg}
	s := newScope(t)
	s.namespaceName = isolation.NamespaceName(t, cfg)
	objs := []client.Object{isolation.Namespace(t, s.namespaceName)}
	objs = append(objs, r.isolationObjects(s)...)
	objs = append(objs, r.accessObjects(s)...)
	if t.Spec.Database != nil {
		objs = append(objs, r.databaseObjects(s)...)
	}
	if secrets.Requested(t) && cfg.Vault != nil {
		objs = append(objs, r.secretObjects(s)...)
	}
	return objs
}
