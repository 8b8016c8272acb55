#!/usr/bin/env bash
# Provides kube-apiserver, etcd and kubectl at pinned versions for envtest, make dev and e2e.
#
# Prints the directory that holds the three binaries (use it as KUBEBUILDER_ASSETS).
# Order of preference:
#   1. KUBEBUILDER_ASSETS, when it is set and holds all three binaries;
#   2. a cached build for exactly these versions (bin/k8s/<version>, or the per-user cache);
#   3. setup-envtest (works only with internet access to its release bucket);
#   4. a build from source through the Go module proxy (no internet needed beyond the proxy).
#
# Builds land in a per-user cache keyed by version, so a fresh clone on the same machine does not
# rebuild, and are linked into bin/k8s/<version> of this checkout.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.6}"
SETUP_ENVTEST_VERSION="${SETUP_ENVTEST_VERSION:-release-0.22}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${TENANT_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenant-operator}"
key="k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}-$(go env GOOS)-$(go env GOARCH)"
dest="${root}/bin/k8s/${key}"

log() { echo "envtest: $*" >&2; }
have_all() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ] && [ -x "$1/kubectl" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "${KUBEBUILDER_ASSETS}"; then
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi
if have_all "${dest}"; then
  echo "${dest}"
  exit 0
fi

link_into_bin() {
  mkdir -p "${dest}"
  for b in kube-apiserver etcd kubectl; do ln -sf "$1/${b}" "${dest}/${b}"; done
  echo "${dest}"
}

if have_all "${cache}/${key}"; then
  link_into_bin "${cache}/${key}"
  exit 0
fi

# setup-envtest downloads release binaries; it fails fast without internet, then we build.
if [ "${ENVTEST_NO_DOWNLOAD:-}" != "1" ]; then
  log "trying setup-envtest ${SETUP_ENVTEST_VERSION} for ${KUBE_VERSION}"
  if dir=$(GOFLAGS=-mod=mod timeout 120 go run "sigs.k8s.io/controller-runtime/tools/setup-envtest@${SETUP_ENVTEST_VERSION}" \
      use "${KUBE_VERSION}" --bin-dir "${cache}/setup-envtest" -p path 2>/dev/null) && have_all "${dir}"; then
    link_into_bin "${dir}"
    exit 0
  fi
  log "setup-envtest could not download; building from source through the Go module proxy"
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
out="${cache}/${key}.partial"
rm -rf "${out}" && mkdir -p "${out}"

# kube-apiserver and kubectl: a throwaway module requiring k8s.io/kubernetes, with every staging
# module that k8s.io/kubernetes points at ./staging/ replaced by the same module at v0.<minor>.<patch>.
log "building kube-apiserver and kubectl v${KUBE_VERSION} (a few minutes on a cold cache)"
mkdir -p "${work}/kube" && cd "${work}/kube"
go mod init envtest.local/kube >/dev/null 2>&1
go mod edit -require="k8s.io/kubernetes@v${KUBE_VERSION}"
kmod="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
staging_version="v0.${KUBE_VERSION#*.}"
grep -E '=> \./staging/' "${kmod}" | awk '{print $1}' | sort -u | while read -r m; do
  go mod edit -replace="${m}=${m}@${staging_version}"
done
cat > tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || GOFLAGS=-mod=mod go mod tidy
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "${out}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "${out}/kubectl" k8s.io/kubernetes/cmd/kubectl

log "building etcd v${ETCD_VERSION}"
mkdir -p "${work}/etcd" && cd "${work}/etcd"
go mod init envtest.local/etcd >/dev/null 2>&1
go mod edit -require="go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do
  go mod edit -replace="go.etcd.io/etcd/${m}=go.etcd.io/etcd/${m}@v${ETCD_VERSION}"
done
cat > tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || GOFLAGS=-mod=mod go mod tidy
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "${out}/etcd" go.etcd.io/etcd/server/v3

rm -rf "${cache:?}/${key}" && mv "${out}" "${cache}/${key}"
log "cached in ${cache}/${key}"
link_into_bin "${cache}/${key}"
