#!/usr/bin/env bash
# make dev: a local control plane, the operator and the samples, on a machine with only Go.
# The dev program is built and exec'd (not `go run`), so Ctrl-C reaches it directly and it stops
# the operator and the control plane before exiting.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KUBEBUILDER_ASSETS="$(hack/envtest.sh)"
export KUBEBUILDER_ASSETS
go build -o bin/dev-env ./hack/dev
exec bin/dev-env "$@"
