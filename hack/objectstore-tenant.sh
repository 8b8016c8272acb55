#!/usr/bin/env bash
# Gives a tenant its own account on the test cluster's object store (versitygw, make cluster), as a
# platform does before creating a Tenant with backups (docs/database.md): an account that owns one
# bucket, tenant-<name>, and nothing else; its keys stored in Vault at <prefix>/<name>/backup, where
# the operator's tenantCredentials read them. Run again to rotate the secret key.
#
#   hack/objectstore-tenant.sh NAME           create or rotate
#   hack/objectstore-tenant.sh --delete NAME  remove the account; the bucket and its backups stay
#
# Needs the running cluster (TENANT_OPERATOR_CLUSTER_DIR, default /var/lib/tenantctl-cluster).
# The secret key is generated here and goes to versitygw's admin CLI and to Vault (on stdin); it is
# never printed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
D="${TENANT_OPERATOR_CLUSTER_DIR:-/var/lib/tenantctl-cluster}"
NODE_IP=10.250.0.1
PATH_PREFIX="${PATH_PREFIX:-tenants}"
KV_MOUNT="${KV_MOUNT:-secret}"
die() { echo "objectstore-tenant: $*" >&2; exit 1; }

delete=false
if [ "${1:-}" = --delete ]; then delete=true; shift; fi
name="${1:?usage: $0 [--delete] TENANT}"
[[ "${name}" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || die "${name} is not a tenant name"
[ -f "${D}/objectstore/root-secret" ] || die "no object store in ${D}: run make cluster"

vgw="$("${root}/hack/components.sh" path versitygw)"
vault="$("${root}/hack/components.sh" path vault)"
admin() {
  env ADMIN_ACCESS_KEY=tenantctl-admin ADMIN_SECRET_KEY="$(cat "${D}/objectstore/root-secret")" \
    ADMIN_ENDPOINT_URL="https://${NODE_IP}:9001" SSL_CERT_FILE="${D}/pki/ca.crt" "${vgw}" admin "$@"
}
account="tenant-${name}"
bucket="tenant-${name}"

if "${delete}"; then
  admin delete-user --access "${account}" >/dev/null
  echo "objectstore-tenant: ${account} deleted; bucket ${bucket} kept" >&2
  exit 0
fi

secret="$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)"
if admin list-users 2>/dev/null | awk '{print $1}' | grep -qx "${account}"; then
  admin update-user --access "${account}" --secret "${secret}" >/dev/null
else
  admin create-user --access "${account}" --secret "${secret}" --role user >/dev/null
fi
if ! admin list-buckets 2>/dev/null | awk '{print $1}' | grep -qx "${bucket}"; then
  admin create-bucket --owner "${account}" --bucket "${bucket}" >/dev/null
fi
printf '{"ACCESS_KEY_ID":"%s","ACCESS_SECRET_KEY":"%s"}' "${account}" "${secret}" |
  env VAULT_ADDR="http://${NODE_IP}:8200" VAULT_TOKEN="$(cat "${D}/vault/root-token")" HOME="${D}/vault" \
    "${vault}" kv put -mount="${KV_MOUNT}" "${PATH_PREFIX}/${name}/backup" - >/dev/null
echo "objectstore-tenant: ${account} owns s3://${bucket}; its keys are in Vault at ${KV_MOUNT}/${PATH_PREFIX}/${name}/backup" >&2
