#!/usr/bin/env bash
# make dev: a local control plane, the operator installed with its Helm chart, Vault, ESO and the
# samples, on a machine with only Go. The components are built (or found cached) first; the dev
# program is built and exec'd (not `go run`), so Ctrl-C reaches it directly and it stops the
# operator, ESO, Vault and the control plane before exiting.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/components.sh build kube etcd vault eso helm
KUBEBUILDER_ASSETS="$(hack/components.sh path envtest)"
export KUBEBUILDER_ASSETS
go build -o bin/dev-env ./hack/dev
exec bin/dev-env "$@"
