// Package externalsecrets mirrors the few fields of External Secrets Operator's API
// (external-secrets.io) that the operator writes and reads: SecretStore and ExternalSecret (v1) and
// PushSecret (v1alpha1).
//
// Why a mirror and not ESO's own Go types: v0.20.4, the newest ESO release whose types are in the
// root module (v1.x moved them to a separate module the Go proxy here cannot serve), puts webhook
// registration into its API package and calls controller-runtime's pre-0.23 NewWebhookManagedBy.
// CloudNativePG's API module (v1.30) needs controller-runtime 0.24 or later, so no single version
// compiles both. The contract stays ESO's: the tests install ESO v0.20.4's own CRDs, and the
// operator writes with server-side apply under strict field validation, so a field this mirror got
// wrong is refused by the real schema rather than dropped.
//
// +kubebuilder:object:generate=true
// +kubebuilder:skip
// +groupName=external-secrets.io
package externalsecrets
