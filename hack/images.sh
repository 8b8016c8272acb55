#!/usr/bin/env bash
# Builds the real cluster's container images offline, as docker-save tarballs that
# `ctr -n k8s.io images import` loads into containerd (there is no container engine and no registry).
#
#   hack/images.sh build [NAME...]   build what is missing (default: every image)
#   hack/images.sh path NAME         print NAME's tarball; fail, naming the make target, if not built
#   hack/images.sh ref NAME          print NAME's image reference (what pods name)
#
# NAME: pause (the pod sandbox, hack/pause), operator (this repository's manager: the Dockerfile's
# content), cnpg (the CloudNativePG operator, upstream's layout), postgres (Debian's PostgreSQL on
# a debootstrap root, with Debian's barman-cloud tools), barman-cloud (the Barman Cloud plugin's
# manager) and barman-cloud-sidecar (the postgres image plus that manager as its entrypoint: the
# sidecar the plugin puts next to PostgreSQL calls the image's barman-cloud tools). All but operator
# are cached by version next to the components (hack/components.sh); operator is rebuilt from the
# working tree every time (seconds).
#
# postgres needs root and Debian's debootstrap (installed with apt-get when missing); it takes about
# ten minutes cold and 700 MB of cache. Every image has a fully qualified name and a tag that is not
# `latest`, because an untagged or :latest image makes the kubelet pull.
set -euo pipefail

main() {
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  while IFS='=' read -r key value; do
    case "${key}" in ''|'#'*) continue ;; esac
    if [ -z "${!key:-}" ]; then export "${key}=${value}"; fi
  done < "${root}/hack/versions.env"
  cache="${TENANT_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenant-operator}"
  images="${cache}/images"
  platform="$(go env GOOS)-$(go env GOARCH)"
  mkdir -p "${images}"

  local cmd="${1:-}"; shift || true
  case "${cmd}" in
    build)
      local names=("$@"); [ "${#names[@]}" -gt 0 ] || names=(pause operator cnpg postgres barman-cloud barman-cloud-sidecar)
      local n; for n in "${names[@]}"; do build_one "${n}"; done ;;
    path) [ $# -eq 1 ] || die "usage: $0 path NAME"; path_of "$1" ;;
    ref) [ $# -eq 1 ] || die "usage: $0 ref NAME"; ref_of "$1" ;;
    *) die "usage: $0 build [NAME...] | path NAME | ref NAME" ;;
  esac
}

log() { echo "images: $*" >&2; }
die() { echo "images: $*" >&2; exit 1; }

# The operator's tag is the chart's development tag; the others carry their upstream version.
ref_of() {
  case "$1" in
    pause) echo "localhost/tenantctl/pause:${PAUSE_VERSION:-1}" ;;
    operator) echo "${IMG:-ghcr.io/tenantctl/tenant-operator:dev}" ;;
    cnpg) echo "ghcr.io/cloudnative-pg/cloudnative-pg:${CNPG_VERSION}" ;;
    # CloudNativePG reads the PostgreSQL major version from the tag: it must start with it.
    postgres) [ -f "${images}/postgres-${POSTGRES_SUITE}-${platform}.ref" ] \
                || die "postgres is not built: run make cluster-images"
              cat "${images}/postgres-${POSTGRES_SUITE}-${platform}.ref" ;;
    barman-cloud) echo "localhost/tenantctl/plugin-barman-cloud:${BARMAN_CLOUD_VERSION}" ;;
    # The PostgreSQL tag after the plugin's version: the sidecar is rebuilt when either changes.
    barman-cloud-sidecar) local pg; pg="$(ref_of postgres)"
                          echo "localhost/tenantctl/plugin-barman-cloud-sidecar:${BARMAN_CLOUD_VERSION}-${pg##*:}" ;;
    *) die "unknown image $1 (known: pause operator cnpg postgres barman-cloud barman-cloud-sidecar)" ;;
  esac
}
file_of() {
  case "$1" in
    pause) echo "${images}/pause-${PAUSE_VERSION:-1}-${platform}.tar" ;;
    operator) echo "${root}/bin/images/tenant-operator.tar" ;;
    cnpg) echo "${images}/cnpg-${CNPG_VERSION}-${platform}.tar" ;;
    postgres) echo "${images}/postgres-${POSTGRES_SUITE}-${platform}.tar" ;;
    barman-cloud) echo "${images}/barman-cloud-${BARMAN_CLOUD_VERSION}-${platform}.tar" ;;
    barman-cloud-sidecar) local pg; pg="$(ref_of postgres)"
                          echo "${images}/barman-cloud-sidecar-${BARMAN_CLOUD_VERSION}-${pg##*:}-${platform}.tar" ;;
    *) die "unknown image $1 (known: pause operator cnpg postgres barman-cloud barman-cloud-sidecar)" ;;
  esac
}
path_of() {
  local f; f="$(file_of "$1")"
  [ -f "${f}" ] || die "$1 is not built: run make cluster-images"
  echo "${f}"
}

build_one() {
  local name="$1" out start; out="$(file_of "${name}")"; start=$(date +%s)
  if [ "${name}" != operator ] && [ -f "${out}" ]; then return 0; fi
  mkdir -p "$(dirname "${out}")"
  exec 9>"${out}.lock"; flock 9
  if [ "${name}" != operator ] && [ -f "${out}" ]; then return 0; fi
  log "${name}: building"
  build_tmp="$(mktemp -d "${images}/.${name}.tmp.XXXX")"
  trap 'cleanup_tmp "${build_tmp}"' EXIT
  "build_${name}" "${build_tmp}" "${out}"
  cleanup_tmp "${build_tmp}"; trap - EXIT
  log "${name}: $(ref_of "${name}") built in $(( $(date +%s) - start ))s ($(du -sh "${out}" | cut -f1))"
}
cleanup_tmp() {
  local tmp="$1" m
  # Unmount anything a chroot left mounted before removing its tree.
  for m in $(awk -v t="${tmp}" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "${m}" || true; done
  rm -rf "${tmp}"
}

# image ARGS...: run hack/image (compiled once into the tmp dir's caller).
image() { (cd "${root}" && go run ./hack/image "$@"); }

build_pause() {
  local tmp="$1" out="$2"
  (cd "${root}" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "${tmp}/pause" ./hack/pause)
  image -o "${tmp}/image.tar" -tag "$(ref_of pause)" -user 65535:65535 -entrypoint /pause -file "${tmp}/pause=/pause"
  mv "${tmp}/image.tar" "${out}"
}

build_operator() {
  local tmp="$1" out="$2"
  (cd "${root}" && make --no-print-directory image IMAGE_TAR="${tmp}/image.tar" IMG="$(ref_of operator)") >"${tmp}/make.log" 2>&1 \
    || { cat "${tmp}/make.log" >&2; die "operator: make image failed (output above)"; }
  mkdir -p "$(dirname "${out}")" && mv "${tmp}/image.tar" "${out}"
}

# CloudNativePG's layout: the manager at /operator/manager_<arch> with /manager linking to it, user
# 65532. The operator copies that binary into every PostgreSQL pod (its bootstrap init container) and
# checks the architecture by the file name: any other layout fails with "invalid architecture".
build_cnpg() {
  local tmp="$1" out="$2" manager arch
  manager="$(dirname "$("${root}/hack/components.sh" path cnpg)")/manager"
  arch="$(go env GOARCH)"
  image -o "${tmp}/image.tar" -tag "$(ref_of cnpg)" -user 65532:65532 -entrypoint /manager \
    -file "${manager}=/operator/manager_${arch}" -symlink "/manager=operator/manager_${arch}"
  mv "${tmp}/image.tar" "${out}"
}

# The Barman Cloud plugin's manager: one static binary, /manager, run as `operator` in the plugin's
# Deployment (which sets its own user).
build_barman-cloud() {
  local tmp="$1" out="$2" manager
  manager="$("${root}/hack/components.sh" path barman-cloud)"
  image -o "${tmp}/image.tar" -tag "$(ref_of barman-cloud)" -user 65532:65532 -entrypoint /manager -file "${manager}=/manager"
  mv "${tmp}/image.tar" "${out}"
}

# The sidecar the plugin injects into each PostgreSQL pod (and its restore Job) with only `args`
# (instance, restore): the entrypoint must be /manager, and the barman-cloud-* commands it runs must
# be on the PATH, as uid 26. The postgres image has Debian's barman-cli-cloud already, so the
# sidecar is that image with the manager on top, and containerd stores their shared layer once.
build_barman-cloud-sidecar() {
  local tmp="$1" out="$2" manager base
  manager="$("${root}/hack/components.sh" path barman-cloud)"
  base="$(path_of postgres)"
  image -o "${tmp}/image.tar" -tag "$(ref_of barman-cloud-sidecar)" -base "${base}" -user 26:26 -entrypoint /manager \
    -file "${manager}=/manager"
  mv "${tmp}/image.tar" "${out}"
}

# PostgreSQL from Debian on a debootstrap root. The postgres user is uid/gid 26 as in CloudNativePG's
# images (Debian gives gid 26 to `tape`, moved out of the way), initdb needs its passwd entry, and no
# cluster is created at install time: CloudNativePG runs initdb itself.
build_postgres() {
  local tmp="$1" out="$2" rootfs="$1/rootfs" mirror
  command -v debootstrap >/dev/null || { log "postgres: installing debootstrap with apt-get"; apt_install debootstrap; }
  mirror="$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "postgres: debootstrap ${POSTGRES_SUITE} from ${mirror} (about 5 min)"
  debootstrap --variant=minbase "${POSTGRES_SUITE}" "${rootfs}" "${mirror}" >"${tmp}/debootstrap.log" 2>&1 \
    || { tail -20 "${tmp}/debootstrap.log" >&2; die "postgres: debootstrap failed (log above)"; }
  # The host's sources add the updates and security suites.
  rm -f "${rootfs}/etc/apt/sources.list"
  cp -a /etc/apt/sources.list.d/*.sources "${rootfs}/etc/apt/sources.list.d/" 2>/dev/null || true
  [ ! -f /etc/apt/sources.list ] || cp /etc/apt/sources.list "${rootfs}/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' > "${rootfs}/usr/sbin/policy-rc.d"; chmod 0755 "${rootfs}/usr/sbin/policy-rc.d"
  mkdir -p "${rootfs}/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" > "${rootfs}/etc/postgresql-common/createcluster.d/50-no-main-cluster.conf"
  mount -t proc proc "${rootfs}/proc"
  log "postgres: installing postgresql-${POSTGRES_MAJOR} and barman-cli-cloud in the root (about 5 min)"
  chroot "${rootfs}" /bin/sh -ec "
    groupmod -g 1026 tape
    groupadd -g 26 postgres
    useradd -u 26 -g 26 -d /var/lib/postgresql -s /bin/bash postgres
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql-${POSTGRES_MAJOR} barman-cli-cloud locales-all ca-certificates
    apt-get clean
    rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /var/log/*.log /var/cache/debconf/*-old
    mkdir -p /var/run/postgresql && chown 26:26 /var/run/postgresql
  " >"${tmp}/install.log" 2>&1 || { umount "${rootfs}/proc"; tail -30 "${tmp}/install.log" >&2; die "postgres: install failed (log above)"; }
  umount "${rootfs}/proc"
  local version tag
  version="$(chroot "${rootfs}" dpkg-query -W -f '${Version}' "postgresql-${POSTGRES_MAJOR}")"
  version="${version%%-*}"   # 15.20-0+deb12u1 -> 15.20
  tag="localhost/tenantctl/postgresql:${version}-${POSTGRES_SUITE}"
  image -o "${tmp}/image.tar" -tag "${tag}" -user 26:26 -workdir / \
    -env "PATH=/usr/lib/postgresql/${POSTGRES_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    -env "LANG=C.UTF-8" -dir "${rootfs}=/"
  echo "${tag}" > "${out%.tar}.ref"
  mv "${tmp}/image.tar" "${out}"
}

apt_install() {
  [ "$(id -u)" = 0 ] || die "installing $* needs root (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; }
}

main "$@"; exit $?
