#!/usr/bin/env bash
# Builds the third-party components that the tests, make dev and the e2e suite run, from source
# through the Go module proxy (no release downloads, no container engine), and caches them per user
# by version. Tests never build: they ask `path`, which fails at once with the make target to run.
#
#   hack/components.sh build [NAME...]   build what is missing (default: every component the tests need)
#   hack/components.sh path NAME         print where NAME is; fail, naming the make target, if not built
#   hack/components.sh list              print each component, its version and whether it is built
#
# NAME: kube (kube-apiserver, kubectl), etcd, vault, eso (the External Secrets Operator
# controller), helm; for the real cluster also cnpg (the CloudNativePG operator), kube-node (kubelet,
# kube-controller-manager, kube-scheduler, kube-proxy), coredns, kube-router, barman-cloud (the
# Barman Cloud plugin's manager) and versitygw (the S3 object store of backups); or envtest for
# `path` (a directory holding kube-apiserver, etcd and kubectl, for KUBEBUILDER_ASSETS; a
# KUBEBUILDER_ASSETS that already holds all three wins).
#
# Versions come from hack/versions.env (an environment variable of the same name overrides one); the
# cache is $TENANT_OPERATOR_CACHE, else $XDG_CACHE_HOME/tenant-operator, else ~/.cache/tenant-operator.
#
# Safe under concurrency and interruption: a build holds a per-component lock (a second build of the
# same component waits for it), writes into a unique temporary directory and renames it into place,
# so a cache entry exists only when complete. The go commands run in their own process group, which
# is killed when this script is interrupted (INT, TERM, HUP); a build whose script was killed with
# SIGKILL is killed by the next build of the same component, which also removes its leftovers.
# Compiles run one at a time, each using every core; module downloads for the next components
# overlap with the current compile.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
while IFS='=' read -r key value; do
  case "${key}" in ''|'#'*) continue ;; esac
  if [ -z "${!key:-}" ]; then export "${key}=${value}"; fi
done < "${root}/hack/versions.env"

cache="${TENANT_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenant-operator}"
platform="$(go env GOOS)-$(go env GOARCH)"
# What `make test` needs; make test-e2e and make dev add eso.
default_components=(kube etcd vault eso helm)
# Every component; kube-node, coredns, kube-router and cnpg are the real cluster's (make cluster).
all_components=(kube etcd vault eso helm cnpg kube-node coredns kube-router barman-cloud versitygw)

log() { echo "components: $*" >&2; }
die() { echo "components: $*" >&2; exit 1; }

version_of() {
  case "$1" in
    kube|kube-node) echo "${KUBE_VERSION}" ;;
    etcd) echo "${ETCD_VERSION}" ;;
    vault) echo "${VAULT_VERSION}" ;;
    eso) echo "${ESO_VERSION}" ;;
    helm) echo "${HELM_VERSION}" ;;
    cnpg) echo "${CNPG_VERSION}" ;;
    coredns) echo "${COREDNS_VERSION}" ;;
    kube-router) echo "${KUBE_ROUTER_VERSION}" ;;
    barman-cloud) echo "${BARMAN_CLOUD_VERSION}" ;;
    versitygw) echo "${VERSITYGW_VERSION}" ;;
    selftest) [ "${COMPONENTS_SELFTEST:-}" = 1 ] && echo 0 || die "unknown component $1" ;;
    *) die "unknown component $1 (known: ${all_components[*]})" ;;
  esac
}
# packages_of NAME: the binaries NAME is, each as BINARY=GO_PACKAGE. Written once: the binaries a
# cache entry must hold, the wrapper's imports and the builds all come from here.
packages_of() {
  case "$1" in
    kube) echo "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kubectl=k8s.io/kubernetes/cmd/kubectl" ;;
    kube-node) echo "kubelet=k8s.io/kubernetes/cmd/kubelet kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager" \
                    "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kube-proxy=k8s.io/kubernetes/cmd/kube-proxy" ;;
    etcd) echo "etcd=go.etcd.io/etcd/server/v3" ;;
    vault) echo "vault=github.com/hashicorp/vault" ;;
    eso) echo "external-secrets=github.com/external-secrets/external-secrets" ;;
    helm) echo "helm=helm.sh/helm/v4/cmd/helm" ;;
    cnpg) echo "manager=github.com/cloudnative-pg/cloudnative-pg/cmd/manager" ;;
    coredns) echo "coredns=github.com/coredns/coredns" ;;
    kube-router) echo "kube-router=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router" ;;
    barman-cloud) echo "manager=github.com/cloudnative-pg/plugin-barman-cloud/cmd/manager" ;;
    versitygw) echo "versitygw=github.com/versity/versitygw/cmd/versitygw" ;;
    selftest) echo "selftest=" ;;
  esac
}
binaries_of() { local p; for p in $(packages_of "$1"); do echo "${p%%=*}"; done; }

# Rough cold build times on 2 cores, for the progress line.
estimate_of() {
  case "$1" in
    kube) echo "about 6 min" ;; etcd) echo "about 1 min" ;; vault) echo "about 8 min" ;;
    eso) echo "about 4 min" ;; helm) echo "about 3 min" ;; cnpg) echo "about 5 min" ;;
    kube-node) echo "about 4 min after kube, 20 alone" ;; coredns) echo "about 2 min after kube, 7 alone" ;; kube-router) echo "about 3 min" ;;
    barman-cloud) echo "about 4 min after cnpg, 7 alone" ;; versitygw) echo "about 2 min" ;;
  esac
}
id_of() { echo "$1-$(version_of "$1")-${platform}"; }
dir_of() { echo "${cache}/$(id_of "$1")"; }
built() {
  local d b; d="$(dir_of "$1")"
  for b in $(binaries_of "$1"); do [ -x "${d}/${b}" ] || return 1; done
}
make_target_of() { echo "make components (or make component-$1)"; }

# --- the wrapper modules: a throwaway module requiring the component, one per component ----------

# The checksum database does not hold some of these modules' dependencies (provider SDKs of Vault
# and ESO); checking is turned off for the throwaway wrappers only, never for the project's go.mod.
wrapper_env() {
  case "$1" in
    kube|kube-node|etcd) echo "GOFLAGS=-mod=mod" ;;
    *) echo "GOFLAGS=-mod=mod GOSUMDB=off" ;;
  esac
}

# prepare NAME DIR: write the wrapper module for NAME into DIR and resolve its dependencies (this is
# where modules are downloaded).
prepare() {
  local name="$1" dir="$2" version; version="$(version_of "$1")"
  mkdir -p "${dir}" && cd "${dir}"
  [ "${name}" != selftest ] || return 0
  go mod init "components.local/${name}" >/dev/null 2>&1
  local required=""
  req() { go mod edit -require="$1"; required+=" $1"; }
  case "${name}" in
    kube|kube-node)
      # One wrapper for every Kubernetes binary (the same go.mod, so one build cache serves them all).
      # k8s.io/kubernetes points its staging modules at ./staging/; require each at v0.<minor>.<patch>.
      req "k8s.io/kubernetes@v${version}"
      local kmod staging="v0.${version#*.}"
      kmod="$(env GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
      grep -E '=> \./staging/' "${kmod}" | awk '{print $1}' | sort -u | while read -r m; do
        go mod edit -replace="${m}=${m}@${staging}"
      done
      ;;
    etcd)
      req "go.etcd.io/etcd/server/v3@v${version}"
      local m
      for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do
        go mod edit -replace="go.etcd.io/etcd/${m}=go.etcd.io/etcd/${m}@v${version}"
      done
      ;;
    vault)
      req "github.com/hashicorp/vault@v${version}"
      go mod edit -replace="github.com/hashicorp/vault/sdk=github.com/hashicorp/vault/sdk@v${VAULT_SDK_VERSION}"
      go mod edit -replace="github.com/99designs/keyring=github.com/Jeffail/keyring@v1.2.3"
      go mod edit -replace="github.com/ma314smith/signedxml@v1.1.1=github.com/moov-io/signedxml@v1.1.1"
      ;;
    eso)
      req "github.com/external-secrets/external-secrets@v${version}"
      go mod edit -replace="github.com/Masterminds/sprig/v3=github.com/external-secrets/sprig/v3@v3.3.0"
      ;;
    helm)
      req "helm.sh/helm/v4@v${version}" ;;
    cnpg)
      req "github.com/cloudnative-pg/cloudnative-pg@v${version}" ;;
    coredns)
      req "github.com/coredns/coredns@v${version}" ;;
    barman-cloud)
      req "github.com/cloudnative-pg/plugin-barman-cloud@v${version}" ;;
    versitygw)
      req "github.com/versity/versitygw@v${version}" ;;
    kube-router)
      req "github.com/cloudnativelabs/kube-router/v2@v${version}"
      # Its netlink pseudo-version is refused by the module proxy; the last release serves instead.
      go mod edit -replace="github.com/vishvananda/netlink=github.com/vishvananda/netlink@v1.3.1"
      ;;
  esac
  # The wrapper imports what it builds; the Kubernetes wrapper imports every Kubernetes binary, so
  # that kube and kube-node share one go.mod and one build cache.
  local names="${name}" p
  case "${name}" in kube|kube-node) names="kube kube-node" ;; esac
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for p in $(for n in ${names}; do packages_of "${n}"; done); do printf '\t_ "%s"\n' "${p#*=}"; done
    printf ')\n'
  } > tools.go
  # -e: some of these modules' test-only imports are missing from the proxy; the build below fails
  # loudly if anything the binary needs is missing.
  env $(wrapper_env "${name}") go mod tidy -e >/dev/null 2>"${dir}/tidy.log" || { cat "${dir}/tidy.log" >&2; return 1; }
  # tidy -e drops a requirement it cannot download (the proxy refuses some versions' sources), and
  # go build -mod=mod would then quietly pick another version: refuse instead.
  local main_module got
  for main_module in ${required}; do
    got="$(go list -m -f '{{.Version}}' "${main_module%@*}" 2>/dev/null || true)"
    if [ "${got}" != "${main_module#*@}" ]; then
      grep -v '^go: downloading' "${dir}/tidy.log" >&2 || true
      die "${name}: ${main_module} could not be resolved (got '${got}'); the module proxy may not serve that version: pick another in hack/versions.env"
    fi
  done
}

# compile NAME WRAPPER OUT: build NAME's binaries from its wrapper into OUT.
compile() {
  local name="$1" dir="$2" out="$3"
  cd "${dir}"
  if [ "${name}" = selftest ]; then
    # hack/test-components.sh: a stand-in that takes SELFTEST_SECONDS to "compile", so that locking,
    # interruption and reaping are tested on the real mechanics without a real build.
    mkdir -p "${out}" && sleep "${SELFTEST_SECONDS:-1}"
    printf '#!/bin/sh\necho selftest ok\n' > "${out}/selftest" && chmod +x "${out}/selftest"
    return 0
  fi
  local ldflags="-s -w" p
  case "${name}" in
    # Without these, nodes and components report v0.0.0-master.
    kube|kube-node)
      local v="v$(version_of "${name}")" minor
      minor="${v#v*.}"; minor="${minor%%.*}"
      ldflags+=" -X k8s.io/component-base/version.gitVersion=${v} -X k8s.io/component-base/version.gitMajor=1"
      ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean" ;;
  esac
  for p in $(packages_of "${name}"); do
    env $(wrapper_env "${name}") CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${out}/${p%%=*}" "${p#*=}"
  done
}

# --- process control ----------------------------------------------------------------------------

child=""     # process group of the running go command
prefetch=""  # process group of the background module download
cleanup_paths=()
on_exit() {
  local pg
  for pg in ${child} ${prefetch}; do kill -TERM -- "-${pg}" 2>/dev/null || true; done
  for pg in ${child} ${prefetch}; do wait "${pg}" 2>/dev/null || true; done
  if [ "${#cleanup_paths[@]}" -gt 0 ]; then rm -rf "${cleanup_paths[@]}"; fi
}
trap on_exit EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM HUP

# run CMD...: run CMD in a process group of its own (so that it and every compiler it starts can be
# killed together), without the lock's file descriptor, and wait for it. bash runs traps while it
# waits, so an interrupt is handled at once rather than after the build.
run() {
  setsid "$@" 8>&- 9>&- &
  child=$!
  local rc=0
  wait "${child}" || rc=$?
  child=""
  return "${rc}"
}

# reap_locked ID: with ID's lock held, any build of it still running belongs to a script that was
# killed outright (SIGKILL leaves no chance to clean up): stop it, and remove what it left.
reap_locked() {
  local id="$1"
  if [ -s "${cache}/.${id}.pgid" ]; then
    kill -KILL -- "-$(cat "${cache}/.${id}.pgid")" 2>/dev/null && log "stopped a build of ${id} left behind by a killed run"
  fi
  rm -rf "${cache}/.${id}".tmp.* "${cache}/.${id}.pgid"
}

# reap NAME: reap NAME's leftovers now, unless a live build holds its lock.
reap() {
  local id; id="$(id_of "$1")"
  [ -e "${cache}/.${id}.pgid" ] || compgen -G "${cache}/.${id}.tmp.*" >/dev/null || return 0
  exec 8>"${cache}/.${id}.lock"
  if flock -n 8; then reap_locked "${id}"; fi
  exec 8>&-
}

# build_one NAME: build NAME into the cache unless it is there.
build_one() {
  local name="$1" id final tmp start
  id="$(id_of "${name}")"; final="$(dir_of "${name}")"
  mkdir -p "${cache}"
  exec 9>"${cache}/.${id}.lock"
  if ! flock -n 9; then
    log "${name}: another build of ${id} is running; waiting for it"
    flock 9
  fi
  if built "${name}"; then
    log "${name} $(version_of "${name}"): cached"
    exec 9>&-
    return 0
  fi
  reap_locked "${id}"
  rm -rf "${final}"
  tmp="$(mktemp -d "${cache}/.${id}.tmp.XXXXXX")"
  cleanup_paths+=("${tmp}" "${cache}/.${id}.pgid")
  start=$(date +%s)
  log "${name} $(version_of "${name}"): building from source$(e="$(estimate_of "${name}")"; [ -z "${e}" ] || echo " (${e} cold on 2 cores)")"
  # go's work directories go inside ours, so that an interrupted build leaves none in /tmp.
  mkdir -p "${tmp}/gotmp"
  run env GOTMPDIR="${tmp}/gotmp" bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "${cache}/.${id}.pgid" \
    "${BASH_SOURCE[0]}" _build "${name}" "${tmp}"
  rm -f "${cache}/.${id}.pgid"
  mv -T "${tmp}/out" "${final}"
  rm -rf "${tmp}"
  log "${name} $(version_of "${name}"): built in $(( $(date +%s) - start ))s ($(du -sh "${final}" | cut -f1)) -> ${final}"
  exec 9>&-
}

# envtest_dir: the directory for KUBEBUILDER_ASSETS, linking the cached kube and etcd binaries.
envtest_dir() {
  local b
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "${KUBEBUILDER_ASSETS}/kube-apiserver" ] &&
     [ -x "${KUBEBUILDER_ASSETS}/etcd" ] && [ -x "${KUBEBUILDER_ASSETS}/kubectl" ]; then
    echo "${KUBEBUILDER_ASSETS}"; return 0
  fi
  for b in kube etcd; do
    built "${b}" || die "$(id_of "${b}") is not built: run $(make_target_of "${b}")"
  done
  local dest="${root}/bin/k8s/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}-${platform}"
  mkdir -p "${dest}"
  for b in kube-apiserver kubectl; do [ "$(readlink "${dest}/${b}" 2>/dev/null)" = "$(dir_of kube)/${b}" ] || ln -sfn "$(dir_of kube)/${b}" "${dest}/${b}"; done
  [ "$(readlink "${dest}/etcd" 2>/dev/null)" = "$(dir_of etcd)/etcd" ] || ln -sfn "$(dir_of etcd)/etcd" "${dest}/etcd"
  echo "${dest}"
}

# The whole command is one function, called from the last line: bash has parsed all of it before it
# runs, so editing or updating this file while a build runs cannot break that build.
main() {
  cmd="${1:-build}"; shift || true
  case "${cmd}" in
    build)
      names=("$@"); [ "${#names[@]}" -gt 0 ] || names=("${default_components[@]}")
      missing=()
      for n in "${names[@]}"; do version_of "${n}" >/dev/null; built "${n}" || missing+=("${n}"); done
      if [ "${#missing[@]}" -gt 1 ]; then
        # Download the later components' modules while the first one compiles.
        pre="$(mktemp -d)"; cleanup_paths+=("${pre}")
        setsid bash -c 'for n in "${@:3}"; do "$1" _prepare "$n" "$2/$n" >/dev/null 2>&1 || true; done' _ \
          "${BASH_SOURCE[0]}" "${pre}" "${missing[@]:1}" 8>&- 9>&- &
        prefetch=$!
      fi
      mkdir -p "${cache}"
      for n in "${names[@]}"; do reap "${n}"; done
      total_start=$(date +%s)
      for n in "${names[@]}"; do build_one "${n}"; done
      if [ "${#missing[@]}" -gt 0 ]; then
        log "${#missing[@]} built in $(( $(date +%s) - total_start ))s; the cache ${cache} holds $(du -sh "${cache}" | cut -f1)"
      fi
      ;;
    path)
      name="${1:?usage: $0 path NAME}"
      if [ "${name}" = envtest ]; then envtest_dir; exit 0; fi
      built "${name}" || die "$(id_of "${name}") is not built: run $(make_target_of "${name}")"
      set -- $(binaries_of "${name}")
      echo "$(dir_of "${name}")/$1"
      ;;
    list)
      for n in "${all_components[@]}"; do
        if built "${n}"; then s="built: $(dir_of "${n}")"; else s="not built"; fi
        printf '%-12s %-8s %s\n' "${n}" "$(version_of "${n}")" "${s}"
      done
      ;;
    _prepare) # internal: prefetch NAME's modules into the module cache
      trap - EXIT INT TERM HUP
      prepare "$1" "$2"
      ;;
    _build) # internal: build NAME into DIR/out (runs in its own process group; see run)
      trap - EXIT INT TERM HUP
      prepare "$1" "$2/wrapper"
      compile "$1" "$2/wrapper" "$2/out"
      ;;
    *) die "usage: $0 build [NAME...] | path NAME | list" ;;
  esac
}

main "$@"; exit $?
