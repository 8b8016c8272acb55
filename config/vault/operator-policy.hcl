# The tenant-operator's own Vault policy: manage tenants' policies and Kubernetes-auth roles, and
# purge a tenant's data when its Tenant asks for it. Nothing else: the operator never reads a
# tenant's secrets. Assumes the defaults kvMount=secret, pathPrefix=tenants,
# kubernetesAuthMount=kubernetes; hack/vault-bootstrap.sh substitutes other values.

# Tenants' policies, all named tenant-<tenant> or tenant-<tenant>-push.
path "sys/policies/acl/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Tenants' Kubernetes-auth roles. A role may attach only tenant policies, never root or another
# platform policy, and may set only the parameters the operator uses.
path "auth/KUBERNETES_AUTH_MOUNT/role/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "token_policies"                   = ["tenant-*"]
    "bound_service_account_names"      = []
    "bound_service_account_namespaces" = []
    "audience"                         = []
    "token_ttl"                        = []
    "token_max_ttl"                    = []
  }
}

# spec.secrets.purgeOnDelete: list and delete every version of a tenant's secrets.
path "KV_MOUNT/metadata/PATH_PREFIX/*" {
  capabilities = ["list", "delete"]
}
