#!/usr/bin/env bash
# make dev: a local control plane, the operator and the samples, on a machine with only Go.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KUBEBUILDER_ASSETS="$(hack/envtest.sh)"
export KUBEBUILDER_ASSETS
exec go run ./hack/dev "$@"
