package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
	"github.com/tenantctl/tenant-operator/internal/vault"
)

// VaultClient applies tenants' Vault policies and roles (internal/vault against a real Vault).
type VaultClient interface {
	EnsurePolicy(ctx context.Context, p secrets.Policy) (bool, error)
	EnsureRole(ctx context.Context, r secrets.Role) (bool, error)
	Delete(ctx context.Context, policies []secrets.Policy, roles []secrets.Role) error
	Purge(ctx context.Context, tenantPath string) error
}

func (r *Reconciler) secretObjects(s *scope) []client.Object {
	t, ns, v := s.tenant, s.namespaceName, r.Config.Vault
	var objs []client.Object
	for _, sa := range secrets.ServiceAccounts(t, ns) {
		objs = append(objs, sa)
	}
	for _, st := range secrets.SecretStores(t, ns, v) {
		objs = append(objs, st)
	}
	for _, es := range secrets.ExternalSecrets(t, ns, v) {
		objs = append(objs, es)
	}
	if ps := secrets.DatabasePush(t, ns, v); ps != nil {
		objs = append(objs, ps)
	}
	if bc := secrets.BackupCredentials(t, ns, r.Config); bc != nil {
		objs = append(objs, bc)
	}
	return objs
}

// otherPaths maps every other tenant that holds a Vault path and came before t to that path, for
// the overlap check. Only tenants that came first count: of two overlapping tenants only the later
// is refused, so a newcomer that got past admission (the webhook ignored while the operator is
// down, or two creates racing) never degrades the tenant that was there first.
func (r *Reconciler) otherPaths(ctx context.Context, t *tenancyv1alpha1.Tenant) (map[string]string, error) {
	list := &tenancyv1alpha1.TenantList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range list.Items {
		o := &list.Items[i]
		if path, ok := secrets.Held(o, r.Config.Vault); ok && o.Name != t.Name && secrets.Precedes(o, t) {
			out[o.Name] = path
		}
	}
	return out, nil
}

func (r *Reconciler) reconcileSecrets(ctx context.Context, s *scope) error {
	t := s.tenant
	switch {
	case !secrets.Requested(t), r.Config.Vault == nil && t.Spec.Secrets == nil:
		// Nothing is wanted from Vault: what an earlier spec asked for is pruned.
		if err := r.prune(ctx, s, areaSecrets); err != nil {
			s.secrets = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
			return err
		}
		if !secrets.Requested(t) {
			s.secrets = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "the spec requests none")
		} else {
			s.secrets = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "no Vault is configured: the database credentials stay in the namespace only")
		}
		return nil
	case r.Config.Vault == nil || r.Vault == nil:
		s.secrets = failed(tenancyv1alpha1.ReasonInvalidSpec, "spec.secrets: the operator configuration has no Vault")
		return nil
	}
	others, err := r.otherPaths(ctx, t)
	if err != nil {
		return err
	}
	if msg, ok := secrets.Validate(t, r.Config.Vault, others); !ok {
		s.secrets = failed(tenancyv1alpha1.ReasonInvalidSpec, msg)
		return nil
	}
	if err := r.ensureVault(ctx, s); err != nil {
		return err
	}
	if err := r.applyArea(ctx, s, areaSecrets, r.secretObjects(s)); err != nil {
		s.secrets = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	return r.observeSecrets(ctx, s)
}

// ensureVault applies the tenant's policies and roles. A Vault that is down or sealed makes the
// area False and the pass fail, so the controller retries with backoff: recovery needs no restart.
func (r *Reconciler) ensureVault(ctx context.Context, s *scope) error {
	t, v := s.tenant, r.Config.Vault
	var errs []error
	for _, p := range secrets.Policies(t, v) {
		if _, err := r.Vault.EnsurePolicy(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, role := range secrets.Roles(t, s.namespaceName, v) {
		if _, err := r.Vault.EnsureRole(ctx, role); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	switch {
	case errors.Is(err, vault.ErrUnavailable):
		s.secrets = failed(tenancyv1alpha1.ReasonVaultUnavailable, "Vault cannot be reached or is sealed; retrying: "+firstLine(err))
	case err != nil:
		s.secrets = failed(tenancyv1alpha1.ReasonVaultRefused, "Vault refused the tenant's policy or role: "+firstLine(err))
	}
	return err
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }

// observeSecrets mirrors External Secrets Operator's view of the tenant's stores and secrets.
func (r *Reconciler) observeSecrets(ctx context.Context, s *scope) error {
	var observed []esoObject
	for _, obj := range r.secretObjects(s) {
		var st *externalsecrets.Status
		switch o := obj.(type) {
		case *externalsecrets.SecretStore:
			st = &o.Status
		case *externalsecrets.ExternalSecret:
			st = &o.Status
		case *externalsecrets.PushSecret:
			st = &o.Status
		default:
			continue
		}
		if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); client.IgnoreNotFound(err) != nil {
			return err
		}
		observed = append(observed, esoObject{kind: kindOf(obj), name: obj.GetName(), status: *st})
	}
	s.secrets = secretsOutcome(observed)
	return nil
}

// esoObject is one SecretStore, ExternalSecret or PushSecret as External Secrets Operator reports it.
type esoObject struct {
	kind, name string
	status     externalsecrets.Status
}

// secretsOutcome is SecretsReady: True when every store, ExternalSecret and PushSecret reports
// Ready; otherwise False naming the first that is not, with External Secrets Operator's reason and
// message (which carry no secret values).
func secretsOutcome(objs []esoObject) outcome {
	for _, o := range objs {
		var ready *externalsecrets.Condition
		for i := range o.status.Conditions {
			if o.status.Conditions[i].Type == "Ready" {
				ready = &o.status.Conditions[i]
			}
		}
		switch {
		case ready == nil:
			return failed(tenancyv1alpha1.ReasonWaitingForExternalSecrets, fmt.Sprintf("%s %s: not reported by External Secrets Operator yet", o.kind, o.name))
		case ready.Status != metav1.ConditionTrue:
			return failed(tenancyv1alpha1.ReasonSecretNotSynced, fmt.Sprintf("%s %s: %s: %s", o.kind, o.name, ready.Reason, ready.Message))
		}
	}
	return ready(fmt.Sprintf("%d stores and secrets are synced with Vault", len(objs)))
}

// finalizeSecrets carries out the deletion policy in Vault, keyed on the tenant (the policy and role
// names derive from the Tenant's name), so it runs whether or not the namespace still exists.
// Delete removes the tenant's policies and roles (and its data when spec.secrets.purgeOnDelete);
// Retain keeps them (the retain transform keeps the namespace's stores and secrets).
//
// A Vault that is down makes the deletion wait and retry with backoff. A Vault that refuses
// (HTTP 403: the operator's own Vault policy does not allow the removal) makes it wait with a
// condition saying so; the skip-vault-cleanup annotation lets it go on, leaving the policies in
// Vault, and is recorded in an event.
func (r *Reconciler) finalizeSecrets(ctx context.Context, s *scope) error {
	t := s.tenant
	if !secrets.Requested(t) || r.Config.Vault == nil || r.Vault == nil || t.Spec.DeletionPolicy != tenancyv1alpha1.DeletionPolicyDelete {
		return nil
	}
	v := r.Config.Vault
	err := r.Vault.Delete(ctx, secrets.Policies(t, v), secrets.Roles(t, s.namespaceName, v))
	if err == nil && t.Spec.Secrets != nil && t.Spec.Secrets.PurgeOnDelete {
		err = r.Vault.Purge(ctx, secrets.Path(t, v))
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, vault.ErrUnavailable) {
		s.deletion = failed(tenancyv1alpha1.ReasonVaultUnavailable, "removing the tenant's Vault policies and roles: Vault cannot be reached or is sealed; retrying: "+firstLine(err))
		return err
	}
	if reason := t.Annotations[tenancyv1alpha1.AnnotationSkipVaultCleanup]; reason != "" {
		r.warn(t, tenancyv1alpha1.ReasonVaultCleanupSkipped, "the tenant's Vault policies and roles are left in Vault at the request of annotation %s: %s",
			tenancyv1alpha1.AnnotationSkipVaultCleanup, reason)
		return nil
	}
	s.deletion = failed(tenancyv1alpha1.ReasonVaultRefused, fmt.Sprintf(
		"Vault refused to remove the tenant's policies and roles: %s; allow the operator's Vault policy to delete them, or annotate the Tenant with %s=<why> to leave them in Vault",
		firstLine(err), tenancyv1alpha1.AnnotationSkipVaultCleanup))
	return err
}
