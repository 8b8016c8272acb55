// TenantOf answers a question that both the controllers and the admission webhook ask, so that they
// always agree.

package reconcileutil

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
)

// TenantOf is the live Tenant whose namespace this is: the namespace's tenant label names the
// Tenant, and the Tenant's status names the namespace back (a label alone is not proof: it
// outlives a Tenant deleted under Retain). Nil when there is none, or it is being deleted.
func TenantOf(ctx context.Context, r client.Reader, namespace string) (*tenancyv1alpha1.Tenant, error) {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	name := ns.Labels[tenancyv1alpha1.LabelTenant]
	if name == "" {
		return nil, nil
	}
	t := &tenancyv1alpha1.Tenant{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, t); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !t.DeletionTimestamp.IsZero() || t.Status.Namespace != namespace {
		return nil, nil
	}
	return t, nil
}
