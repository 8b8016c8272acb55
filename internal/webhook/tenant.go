package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
	"github.com/tenantctl/tenant-operator/internal/builders/isolation"
	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/config"
)

// TenantPath is where the Tenant validator is served.
const TenantPath = "/validate-tenancy-tenantctl-io-v1alpha1-tenant"

// The Tenant webhook fails open (failurePolicy Ignore): a write unrelated to RoleBinding grants is
// never blocked because the operator is down. What it refuses is refused again by the reconciler,
// which degrades only the later of two overlapping tenants, so bypassing it breaks no working tenant.
// It reads Tenants, which the operator may already list and watch: no new permission.
//
// +kubebuilder:webhook:path=/validate-tenancy-tenantctl-io-v1alpha1-tenant,mutating=false,failurePolicy=ignore,sideEffects=None,groups=tenancy.tenantctl.io,resources=tenants,verbs=create;update,versions=v1alpha1,name=tenants.tenancy.tenantctl.io,admissionReviewVersions=v1,timeoutSeconds=3

// TenantValidator refuses, at admission, a Tenant whose Vault path is the same as, contains or lies
// inside the path another tenant holds, naming that tenant, so that the newcomer is told at once
// rather than admitted and reported InvalidSpec; and one whose backup or restore destinationPath
// lies outside its own backup path when the platform does not allow it. Every other rule on a Tenant
// is the CRD's or the reconciler's.
type TenantValidator struct {
	// Reader lists Tenants: the manager's cache (every replica serves the webhook and keeps the
	// Tenant informer), so admission costs the apiserver no list.
	Reader client.Reader
	Config config.Config
}

var _ admission.Handler = &TenantValidator{}

// Handle decides one admission request, and warns the author of an allowed Tenant whose database
// the platform's network configuration would keep from becoming ready.
func (v *TenantValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	t := &tenancyv1alpha1.Tenant{}
	if err := json.Unmarshal(req.Object.Raw, t); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	resp := v.decide(ctx, req, t)
	if warning := isolation.EgressWarning(t, v.Config); resp.Allowed && warning != "" {
		resp.Warnings = append(resp.Warnings, warning)
	}
	return resp
}

func (v *TenantValidator) decide(ctx context.Context, req admission.Request, t *tenancyv1alpha1.Tenant) admission.Response {
	if msg, ok := database.ValidatePaths(t, v.Config); !ok {
		return admission.Denied(msg)
	}
	if v.Config.Vault == nil {
		return admission.Allowed("no Vault is configured")
	}
	path, holds := secrets.Held(t, v.Config.Vault)
	if !holds {
		return admission.Allowed("the tenant holds no Vault path")
	}
	if req.Operation == admissionv1.Update {
		old := &tenancyv1alpha1.Tenant{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if oldPath, held := secrets.Held(old, v.Config.Vault); held && oldPath == path {
			return admission.Allowed("the Vault path is unchanged")
		}
	}
	list := &tenancyv1alpha1.TenantList{}
	if err := v.Reader.List(ctx, list); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("list Tenants: %w", err))
	}
	if errs := overlapping(t, path, list.Items, v.Config.Vault); len(errs) > 0 {
		return admission.Denied(errs.ToAggregate().Error())
	}
	return admission.Allowed("")
}

// overlapping lists the tenants, other than t, whose Vault paths overlap path, in name order.
// Unlike the reconciler, admission refuses an overlap with any tenant, created before t or not: an
// update that moved an earlier tenant onto a later one's path would otherwise break the later one.
func overlapping(t *tenancyv1alpha1.Tenant, path string, tenants []tenancyv1alpha1.Tenant, v *config.Vault) field.ErrorList {
	sort.Slice(tenants, func(i, j int) bool { return tenants[i].Name < tenants[j].Name })
	var errs field.ErrorList
	for i := range tenants {
		o := &tenants[i]
		other, holds := secrets.Held(o, v)
		if o.Name == t.Name || !holds || !secrets.Overlaps(path, other) {
			continue
		}
		errs = append(errs, field.Forbidden(field.NewPath("spec", "secrets", "vaultPath"), fmt.Sprintf(
			"%q overlaps the Vault path %q of tenant %s: tenants' Vault paths may not be the same or contain one another", path, other, o.Name)))
	}
	return errs
}
