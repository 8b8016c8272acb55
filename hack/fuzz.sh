#!/usr/bin/env bash
# Runs each fuzz target for FUZZTIME (make fuzz). The targets run against a real kube-apiserver that
# each fuzz worker starts in its TestMain; the go command ends its workers without their cleanup,
# so the processes they started (recorded by testenv in TENANT_OPERATOR_FUZZ_PIDS) are stopped
# here once each target is done. Prints each target's executions and what it found.
#
#   hack/fuzz.sh FUZZTIME PACKAGE:TARGET...
set -euo pipefail
fuzztime="$1"; shift
pids="$(mktemp)"
export TENANT_OPERATOR_FUZZ_PIDS="${pids}"
cleanup() {
  while read -r pid; do
    # Only what a worker started: kube-apiserver, etcd or vault still running under that pid.
    if [ -r "/proc/${pid}/cmdline" ] && tr '\0' ' ' < "/proc/${pid}/cmdline" | grep -qE '(kube-apiserver|etcd|vault) '; then
      kill "${pid}" 2>/dev/null || true
    fi
  done < "${pids}"
  : > "${pids}"
}
trap 'cleanup; rm -f "${pids}"' EXIT
status=0
for t in "$@"; do
  pkg="${t%%:*}" target="${t##*:}"
  echo "fuzz: ${target} in ${pkg} for ${fuzztime}"
  log="$(mktemp)"
  if ! go test "${pkg}" -run '^$' -fuzz "^${target}\$" -fuzztime "${fuzztime}" -parallel 1 2>&1 | tee "${log}" | grep -vE '^fuzz: elapsed: [0-9hms]+, (execs|gathering)'; then
    status=1
  fi
  grep -E '^fuzz: elapsed' "${log}" | tail -1 | sed "s/^/fuzz: ${target}: last: /"
  rm -f "${log}"
  cleanup
done
exit "${status}"
