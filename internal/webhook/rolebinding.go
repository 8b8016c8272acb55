// Package webhook is the operator's admission webhooks.
//
// rolebindings.tenancy.tenantctl.io: the operator creates RBAC RoleBindings on users' behalf, which
// would make it a confused deputy if it granted whatever it was asked: every grant is therefore
// checked here, against the requester, before it is stored. This webhook fails closed.
//
// tenants.tenancy.tenantctl.io: a Tenant whose Vault path overlaps another tenant's is refused
// before it is stored. This webhook fails open (tenant.go says why).
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
)

// RoleBindingPath is where the RoleBinding validator is served.
const RoleBindingPath = "/validate-tenancy-tenantctl-io-v1alpha1-rolebinding"

// +kubebuilder:webhook:path=/validate-tenancy-tenantctl-io-v1alpha1-rolebinding,mutating=false,failurePolicy=fail,sideEffects=None,groups=tenancy.tenantctl.io,resources=rolebindings,verbs=create;update,versions=v1alpha1,name=rolebindings.tenancy.tenantctl.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// RoleBindingValidator admits a tenancy RoleBinding only when it is in a tenant namespace, names an
// allowed tenant role, binds only identities the tenant may bind, expires in the future and within
// the configured maximum, and grants nothing the requester does not already hold there (or may
// bind), the rule kube-apiserver applies to a native RoleBinding.
type RoleBindingValidator struct {
	// Reader reads uncached: the request's namespace and its Tenant, two reads by name.
	Reader client.Reader
	// RBAC holds the cluster's Roles, ClusterRoles and their bindings; until it has synced, a grant
	// that needs them is answered with ErrRBACNotSynced.
	RBAC *RBACCache
	// Client creates SubjectAccessReviews.
	Client client.Client
	Config config.Config
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

var _ admission.Handler = &RoleBindingValidator{}

// decisionTimeout bounds one decision a little inside the webhook's timeoutSeconds (5), so a slow
// apiserver gets the webhook's own error rather than a bare timeout.
const decisionTimeout = 4 * time.Second

// Handle decides one admission request.
func (v *RoleBindingValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	ctx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()
	rb := &tenancyv1alpha1.RoleBinding{}
	if err := json.Unmarshal(req.Object.Raw, rb); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation == admissionv1.Update {
		old := &tenancyv1alpha1.RoleBinding{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if equality.Semantic.DeepEqual(old.Spec, rb.Spec) {
			return admission.Allowed("the grant is unchanged")
		}
	}
	if rb.Namespace == "" {
		rb.Namespace = req.Namespace
	}
	errs, err := v.Validate(ctx, rb, req.UserInfo)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if len(errs) > 0 {
		return admission.Denied(errs.ToAggregate().Error())
	}
	return admission.Allowed("")
}

// Validate lists what is wrong with granting rb on behalf of user; err is a failure to decide.
func (v *RoleBindingValidator) Validate(ctx context.Context, rb *tenancyv1alpha1.RoleBinding, user authenticationv1.UserInfo) (field.ErrorList, error) {
	var errs field.ErrorList
	tenant, err := reconcileutil.TenantOf(ctx, v.Reader, rb.Namespace)
	if err != nil {
		return nil, err
	}
	if tenant == nil {
		return field.ErrorList{field.Forbidden(field.NewPath("metadata", "namespace"),
			fmt.Sprintf("namespace %s is not a tenant namespace: tenancy RoleBindings are accepted only in the namespace of a live Tenant", rb.Namespace))}, nil
	}
	clusterRole, ok := v.Config.Roles[rb.Spec.Role]
	if !ok {
		errs = append(errs, field.NotSupported(field.NewPath("spec", "role"), rb.Spec.Role, v.roleNames()))
	}
	errs = append(errs, v.validateSubjects(rb, tenant)...)
	errs = append(errs, v.validateExpiry(rb)...)
	if len(errs) > 0 {
		return errs, nil
	}
	missing, err := v.escalation(ctx, rb.Namespace, clusterRole, user)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "role"), fmt.Sprintf(
			"%s may not grant %s (ClusterRole %s) in %s: they may not bind it, and do not hold %s there themselves",
			user.Username, rb.Spec.Role, clusterRole, rb.Namespace, summarize(describeRules(missing)))))
	}
	return errs, nil
}

func (v *RoleBindingValidator) roleNames() []string {
	out := make([]string, 0, len(v.Config.Roles))
	for r := range v.Config.Roles {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func (v *RoleBindingValidator) validateSubjects(rb *tenancyv1alpha1.RoleBinding, t *tenancyv1alpha1.Tenant) field.ErrorList {
	var errs field.ErrorList
	var userPrefix, groupPrefix string
	if t.Spec.SSO != nil {
		userPrefix, groupPrefix = t.Spec.SSO.UserPrefix, t.Spec.SSO.GroupPrefix
	}
	for i, s := range rb.Spec.Subjects {
		p := field.NewPath("spec", "subjects").Index(i)
		switch s.Kind {
		case tenancyv1alpha1.SubjectServiceAccount:
			if s.Namespace != rb.Namespace {
				errs = append(errs, field.Forbidden(p.Child("namespace"), fmt.Sprintf(
					"ServiceAccount %s/%s is not of tenant %s: only ServiceAccounts of namespace %s may be granted", s.Namespace, s.Name, t.Name, rb.Namespace)))
			}
		case tenancyv1alpha1.SubjectUser, tenancyv1alpha1.SubjectGroup:
			prefix, what := userPrefix, "user"
			if s.Kind == tenancyv1alpha1.SubjectGroup {
				prefix, what = groupPrefix, "group"
			}
			switch {
			case strings.HasPrefix(s.Name, "system:"):
				errs = append(errs, field.Forbidden(p.Child("name"), fmt.Sprintf(
					"%s %q is a Kubernetes system identity; tenant roles are granted only to people and groups of the tenant's SSO", what, s.Name)))
			case prefix != "" && !strings.HasPrefix(s.Name, prefix):
				errs = append(errs, field.Forbidden(p.Child("name"), fmt.Sprintf(
					"%s %q does not carry tenant %s's SSO prefix %q", what, s.Name, t.Name, prefix)))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("kind"), s.Kind, []string{"User", "Group", "ServiceAccount"}))
		}
	}
	return errs
}

func (v *RoleBindingValidator) validateExpiry(rb *tenancyv1alpha1.RoleBinding) field.ErrorList {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	p := field.NewPath("spec", "expiresAt")
	exp := rb.Spec.ExpiresAt
	if exp != nil && !exp.After(now) {
		return field.ErrorList{field.Invalid(p, exp.UTC().Format(time.RFC3339), "must be in the future")}
	}
	limit := v.Config.MaxGrantDuration.Duration
	if limit == 0 {
		return nil
	}
	if exp == nil {
		return field.ErrorList{field.Required(p, fmt.Sprintf("grants last at most %s on this platform", v.Config.MaxGrantDuration))}
	}
	if exp.After(now.Add(limit)) {
		return field.ErrorList{field.Invalid(p, exp.UTC().Format(time.RFC3339),
			fmt.Sprintf("must be at most %s ahead (before %s)", v.Config.MaxGrantDuration, now.Add(limit).UTC().Format(time.RFC3339)))}
	}
	return nil
}

// escalation applies kube-apiserver's rule for creating a native RoleBinding to clusterRole in
// namespace: allowed for system:masters, or when user may "bind" that ClusterRole there (asked of
// the apiserver's authorizer, as the apiserver does), or when the RBAC rules user holds there cover
// every rule of the ClusterRole (resolved from RoleBindings and ClusterRoleBindings as the
// apiserver resolves them, compared with the apiserver's own Covers). It returns the rules user
// lacks (none: allowed).
func (v *RoleBindingValidator) escalation(ctx context.Context, namespace, clusterRole string, user authenticationv1.UserInfo) ([]rbacv1.PolicyRule, error) {
	for _, g := range user.Groups {
		if g == "system:masters" {
			return nil, nil
		}
	}
	bind := authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "bind", Group: rbacv1.GroupName,
		Resource: "clusterroles", Name: clusterRole}
	allowed, err := v.review(ctx, user, bind)
	if err != nil || allowed {
		return nil, err
	}
	rbac, err := v.RBAC.reader()
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := rbac.Get(ctx, client.ObjectKey{Name: clusterRole}, role); err != nil {
		return nil, fmt.Errorf("read ClusterRole %s: %w", clusterRole, err)
	}
	held, err := rulesFor(ctx, rbac, user, namespace)
	if err != nil {
		return nil, err
	}
	ok, missing := rbacvalidation.Covers(held, role.Rules)
	if ok {
		return nil, nil
	}
	return missing, nil
}

func (v *RoleBindingValidator) review(ctx context.Context, user authenticationv1.UserInfo, a authorizationv1.ResourceAttributes) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, val := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(val)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra, ResourceAttributes: &a,
	}}
	if err := v.Client.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("SubjectAccessReview: %w", err)
	}
	return sar.Status.Allowed, nil
}

// rulesFor are the RBAC rules user holds in namespace: from every ClusterRoleBinding, and every
// RoleBinding in namespace, that names the user, one of its groups, or its ServiceAccount. rbac is
// the RBAC cache: the lists are not copied (nothing here writes to them).
func rulesFor(ctx context.Context, rbac client.Reader, user authenticationv1.UserInfo, namespace string) ([]rbacv1.PolicyRule, error) {
	var rules []rbacv1.PolicyRule
	crbs := &rbacv1.ClusterRoleBindingList{}
	if err := rbac.List(ctx, crbs, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list ClusterRoleBindings: %w", err)
	}
	for _, b := range crbs.Items {
		if appliesTo(user, b.Subjects, "") {
			r, err := roleRules(ctx, rbac, b.RoleRef, "")
			if err != nil {
				return nil, err
			}
			rules = append(rules, r...)
		}
	}
	rbs := &rbacv1.RoleBindingList{}
	if err := rbac.List(ctx, rbs, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list RoleBindings in %s: %w", namespace, err)
	}
	for _, b := range rbs.Items {
		if appliesTo(user, b.Subjects, namespace) {
			r, err := roleRules(ctx, rbac, b.RoleRef, namespace)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r...)
		}
	}
	return rules, nil
}

// roleRules are the rules of a binding's role; a missing role grants nothing, as in the apiserver.
func roleRules(ctx context.Context, rbac client.Reader, ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "ClusterRole":
		r := &rbacv1.ClusterRole{}
		if err := rbac.Get(ctx, client.ObjectKey{Name: ref.Name}, r); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		return r.Rules, nil
	case "Role":
		r := &rbacv1.Role{}
		if err := rbac.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, r); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		return r.Rules, nil
	}
	return nil, nil
}

// appliesTo says whether a binding's subjects include user, as the apiserver's RBAC matches them.
func appliesTo(user authenticationv1.UserInfo, subjects []rbacv1.Subject, bindingNamespace string) bool {
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if user.Username == s.Name {
				return true
			}
		case rbacv1.GroupKind:
			for _, g := range user.Groups {
				if g == s.Name {
					return true
				}
			}
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = bindingNamespace
			}
			if ns != "" && user.Username == "system:serviceaccount:"+ns+":"+s.Name {
				return true
			}
		}
	}
	return false
}

// describeRules names rules briefly: "create deployments.apps".
func describeRules(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, b := range rbacvalidation.BreakdownRule(r) {
			res := strings.Join(b.Resources, ",")
			if len(b.APIGroups) > 0 && b.APIGroups[0] != "" {
				res += "." + b.APIGroups[0]
			}
			out = append(out, strings.Join(b.Verbs, ",")+" "+res)
		}
	}
	sort.Strings(out)
	return out
}

// summarize names the first few missing permissions and counts the rest.
func summarize(missing []string) string {
	const shown = 4
	if len(missing) <= shown {
		return strings.Join(missing, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(missing[:shown], ", "), len(missing)-shown)
}
