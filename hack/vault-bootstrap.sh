#!/usr/bin/env bash
# The one-time Vault setup a platform team does for tenant-operator (docs/vault.md). The e2e suite
# and make dev run exactly this script against their own Vault. Idempotent: run it again after a
# Vault rebuild, or to change a setting.
#
# Needs the vault CLI (VAULT, default: vault on PATH), VAULT_ADDR and a VAULT_TOKEN allowed to
# enable auth methods and write policies, and:
#   KUBERNETES_HOST      the apiserver URL Vault reviews tokens against
#   KUBERNETES_CA_FILE   the CA bundle that verifies the apiserver
# Optional (defaults match the operator configuration's):
#   KV_MOUNT=secret PATH_PREFIX=tenants KUBERNETES_AUTH_MOUNT=kubernetes AUDIENCE=vault
#   OPERATOR_NAMESPACE=tenant-operator-system OPERATOR_SERVICE_ACCOUNT=tenant-operator-controller-manager
#   OPERATOR_ROLE=tenant-operator
#   TOKEN_REVIEWER_JWT_FILE  for a Vault outside the cluster: a token of a ServiceAccount bound to
#                            system:auth-delegator (config/vault/token-reviewer.yaml) that Vault
#                            reviews login tokens with. Unset: Vault runs in the cluster and uses
#                            its own pod's ServiceAccount token.
set -euo pipefail

VAULT="${VAULT:-vault}"
: "${VAULT_ADDR:?VAULT_ADDR is required}" "${VAULT_TOKEN:?VAULT_TOKEN is required}"
: "${KUBERNETES_HOST:?KUBERNETES_HOST is required}" "${KUBERNETES_CA_FILE:?KUBERNETES_CA_FILE is required}"
KV_MOUNT="${KV_MOUNT:-secret}"
PATH_PREFIX="${PATH_PREFIX:-tenants}"
KUBERNETES_AUTH_MOUNT="${KUBERNETES_AUTH_MOUNT:-kubernetes}"
AUDIENCE="${AUDIENCE:-vault}"
OPERATOR_NAMESPACE="${OPERATOR_NAMESPACE:-tenant-operator-system}"
OPERATOR_SERVICE_ACCOUNT="${OPERATOR_SERVICE_ACCOUNT:-tenant-operator-controller-manager}"
OPERATOR_ROLE="${OPERATOR_ROLE:-tenant-operator}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VAULT_ADDR VAULT_TOKEN
log() { echo "vault-bootstrap: $*" >&2; }

# 1. A KV version 2 engine for tenants' secrets.
# (Listed into a variable first: grep -q closing the pipe early would fail the CLI under pipefail.)
mounts="$("${VAULT}" secrets list -format=json)"
if ! grep -q "\"${KV_MOUNT}/\"" <<<"${mounts}"; then
  log "enabling KV v2 at ${KV_MOUNT}/"
  "${VAULT}" secrets enable -path="${KV_MOUNT}" -version=2 kv >/dev/null
fi

# 2. Kubernetes auth, reviewing tokens against this cluster's apiserver.
auths="$("${VAULT}" auth list -format=json)"
if ! grep -q "\"${KUBERNETES_AUTH_MOUNT}/\"" <<<"${auths}"; then
  log "enabling Kubernetes auth at ${KUBERNETES_AUTH_MOUNT}/"
  "${VAULT}" auth enable -path="${KUBERNETES_AUTH_MOUNT}" kubernetes >/dev/null
fi
# Login tokens are issued for Vault's audience, so the apiserver would not take them as the
# credentials of the review itself: Vault reviews with a reviewer token of its own.
config_args=(kubernetes_host="${KUBERNETES_HOST}" kubernetes_ca_cert=@"${KUBERNETES_CA_FILE}")
if [ -n "${TOKEN_REVIEWER_JWT_FILE:-}" ]; then
  config_args+=(token_reviewer_jwt=@"${TOKEN_REVIEWER_JWT_FILE}" disable_local_ca_jwt=true)
fi
"${VAULT}" write "auth/${KUBERNETES_AUTH_MOUNT}/config" "${config_args[@]}" >/dev/null

# 3. The operator's policy: tenants' policies and roles, nothing else.
sed -e "s|KUBERNETES_AUTH_MOUNT|${KUBERNETES_AUTH_MOUNT}|g" -e "s|KV_MOUNT|${KV_MOUNT}|g" \
  -e "s|PATH_PREFIX|${PATH_PREFIX}|g" "${root}/config/vault/operator-policy.hcl" |
  "${VAULT}" policy write "${OPERATOR_ROLE}" - >/dev/null

# 4. The operator's role: its ServiceAccount, by name and namespace, with the configured audience.
"${VAULT}" write "auth/${KUBERNETES_AUTH_MOUNT}/role/${OPERATOR_ROLE}" \
  bound_service_account_names="${OPERATOR_SERVICE_ACCOUNT}" \
  bound_service_account_namespaces="${OPERATOR_NAMESPACE}" \
  audience="${AUDIENCE}" token_policies="${OPERATOR_ROLE}" token_ttl=1h token_max_ttl=1h >/dev/null
log "Vault at ${VAULT_ADDR} is ready for tenant-operator (role ${OPERATOR_ROLE})"
