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

// Reasons of the secrets area.
const (
	reasonVaultUnavailable = "VaultUnavailable"
	reasonVaultRefused     = "VaultRefused"
	reasonNotSynced        = "SecretNotSynced"
	reasonWaitingForESO    = "WaitingForExternalSecrets"
)

func (r *Reconciler) secretObjects(s *scope, retained bool) []client.Object {
	t, ns, v := s.tenant, s.namespaceName, r.Config.Vault
	var objs []client.Object
	for _, sa := range secrets.ServiceAccounts(t, ns, retained) {
		objs = append(objs, sa)
	}
	for _, st := range secrets.SecretStores(t, ns, v, retained) {
		objs = append(objs, st)
	}
	for _, es := range secrets.ExternalSecrets(t, ns, v, retained) {
		objs = append(objs, es)
	}
	if ps := secrets.DatabasePush(t, ns, v, retained); ps != nil {
		objs = append(objs, ps)
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
	case !secrets.Requested(t):
		s.secrets = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "the spec requests none")
		return nil
	case r.Config.Vault == nil && t.Spec.Secrets == nil:
		s.secrets = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "no Vault is configured: the database credentials stay in the namespace only")
		return nil
	case r.Config.Vault == nil || r.Vault == nil:
		s.secrets = failed(tenancyv1alpha1.ReasonInvalidSpec, "spec.secrets: the operator configuration has no Vault")
		s.invalid = true
		return nil
	}
	others, err := r.otherPaths(ctx, t)
	if err != nil {
		return err
	}
	if msg, ok := secrets.Validate(t, r.Config.Vault, others); !ok {
		s.secrets = failed(tenancyv1alpha1.ReasonInvalidSpec, msg)
		s.invalid = true
		return nil
	}
	if err := r.ensureVault(ctx, s); err != nil {
		return err
	}
	if err := r.applyAll(ctx, s, r.secretObjects(s, false)); err != nil {
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
		s.secrets = failed(reasonVaultUnavailable, "Vault cannot be reached or is sealed; retrying: "+firstLine(err))
	case err != nil:
		s.secrets = failed(reasonVaultRefused, "Vault refused the tenant's policy or role: "+firstLine(err))
	}
	return err
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }

// observeSecrets mirrors External Secrets Operator's view of the tenant's stores and secrets.
func (r *Reconciler) observeSecrets(ctx context.Context, s *scope) error {
	var observed []esoObject
	for _, obj := range r.secretObjects(s, false) {
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
			return failed(reasonWaitingForESO, fmt.Sprintf("%s %s: not reported by External Secrets Operator yet", o.kind, o.name))
		case ready.Status != metav1.ConditionTrue:
			return failed(reasonNotSynced, fmt.Sprintf("%s %s: %s: %s", o.kind, o.name, ready.Reason, ready.Message))
		}
	}
	return ready(fmt.Sprintf("%d stores and secrets are synced with Vault", len(objs)))
}

// finalizeSecrets carries out the deletion policy in Vault. Delete removes the tenant's policies and
// roles (and its data when spec.secrets.purgeOnDelete); Retain keeps them, and keeps the namespace's
// stores and secrets, their owner references removed.
func (r *Reconciler) finalizeSecrets(ctx context.Context, s *scope) error {
	t := s.tenant
	if !secrets.Requested(t) || r.Config.Vault == nil || r.Vault == nil {
		return nil
	}
	v := r.Config.Vault
	if t.Spec.DeletionPolicy != tenancyv1alpha1.DeletionPolicyDelete {
		return r.applyAll(ctx, s, r.secretObjects(s, true))
	}
	if err := r.Vault.Delete(ctx, secrets.Policies(t, v), secrets.Roles(t, s.namespaceName, v)); err != nil {
		s.deletion = failed(tenancyv1alpha1.ReasonDeleting, "removing the tenant's Vault policy and role: "+firstLine(err))
		return err
	}
	if t.Spec.Secrets != nil && t.Spec.Secrets.PurgeOnDelete {
		if err := r.Vault.Purge(ctx, secrets.Path(t, v)); err != nil {
			s.deletion = failed(tenancyv1alpha1.ReasonDeleting, "purging the tenant's Vault data: "+firstLine(err))
			return err
		}
	}
	return nil
}
