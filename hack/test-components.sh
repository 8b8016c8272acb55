#!/usr/bin/env bash
# Tests hack/components.sh's promises on its real locking, process-group and cache code, with a
# stand-in component ("selftest", enabled by COMPONENTS_SELFTEST=1) whose build is a sleep, so no
# real component is built:
#   - a build puts a working binary in the cache, and `path` finds it; `path` never builds;
#   - two builds of one component at once: one builds, the other waits for it and builds nothing;
#   - a build interrupted by SIGINT (Ctrl-C) or SIGTERM (make killed) exits at once, leaves no
#     process and no cache entry, and the next build rebuilds;
#   - a build whose script is killed with SIGKILL leaves its process group running, and the next
#     build stops it, removes its leftovers and rebuilds.
# `make test` runs it (about 20 s).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
components="${PWD}/hack/components.sh"
cache="$(mktemp -d)"
trap 'rm -rf "${cache}"' EXIT
export TENANT_OPERATOR_CACHE="${cache}" COMPONENTS_SELFTEST=1
passed=0 failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
ok() { echo "ok: $*"; passed=$((passed + 1)); }
# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds, or fail after SECONDS.
wait_for() {
  local what="$1" limit="$2"; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@"; do
    if [ "$(date +%s)" -ge "${deadline}" ]; then fail "${what}: not within ${limit}s"; return 1; fi
    sleep 0.1
  done
}
# A process group is alive while it has a process that is not a zombie (an orphan's zombie waits for
# init to reap it).
group_alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }
group_gone() { ! group_alive "$1"; }
pgid_file() { echo "${cache}/.selftest-0-$(go env GOOS)-$(go env GOARCH).pgid"; }
has_pgid() { [ -s "$(pgid_file)" ]; }
leftovers() { compgen -G "${cache}/.selftest-0-*.tmp.*" >/dev/null; }
reset() { rm -rf "${cache:?}"/* "${cache}"/.selftest*; }

# 1. A missing component: `path` fails at once, naming the make target, and builds nothing.
reset
if out="$("${components}" path selftest 2>&1)"; then fail "path of a missing component succeeded"
elif [[ "${out}" != *"make components"* ]]; then fail "path does not name the make target: ${out}"
elif leftovers || [ -n "$(ls -A "${cache}")" ]; then fail "path of a missing component wrote to the cache"
else ok "path of a missing component fails at once and names the make target"; fi

# 2. A build, then path.
SELFTEST_SECONDS=0.2 "${components}" build selftest 2>/dev/null
if [ "$("$("${components}" path selftest)")" = "selftest ok" ]; then ok "a built component runs from its cache path"
else fail "built component not found or broken"; fi

# 3. Two builds at once: one builds, one waits.
reset
SELFTEST_SECONDS=2 "${components}" build selftest 2>"${cache}/a.log" &
a=$!
wait_for "first build started" 10 has_pgid
SELFTEST_SECONDS=2 "${components}" build selftest 2>"${cache}/b.log" &
b=$!
wait "${a}" && wait "${b}" || fail "a concurrent build failed"
builds=$(cat "${cache}/a.log" "${cache}/b.log" | grep -c "building from source" || true)
if [ "${builds}" = 1 ] && grep -q "waiting for it" "${cache}/b.log" && "${components}" path selftest >/dev/null; then
  ok "two builds at once: one built, the other waited and built nothing"
else fail "concurrent builds: ${builds} builds; logs: $(cat "${cache}/a.log" "${cache}/b.log")"; fi

# 4. Interrupted by SIGINT and by SIGTERM: nothing left, then a rebuild.
for sig in INT TERM; do
  reset
  # bash starts background jobs with SIGINT ignored (and CI may start us so), and a signal ignored
  # on entry cannot be trapped; env restores its default, as make in a terminal has it at Ctrl-C.
  SELFTEST_SECONDS=60 env --default-signal=INT "${components}" build selftest 2>/dev/null &
  pid=$!
  wait_for "build started" 10 has_pgid || continue
  pgid="$(cat "$(pgid_file)")"
  kill "-${sig}" "${pid}"
  rc=0; wait "${pid}" || rc=$?
  wait_for "the interrupted build's processes gone" 5 group_gone "${pgid}" || true
  if [ "${rc}" = 0 ]; then fail "SIG${sig}: the interrupted build exited 0"
  elif "${components}" path selftest >/dev/null 2>&1; then fail "SIG${sig}: an interrupted build left a cache entry"
  elif leftovers; then fail "SIG${sig}: an interrupted build left its temporary directory"
  else ok "SIG${sig} stops a build at once and leaves no process and no cache entry"; fi
  SELFTEST_SECONDS=0.2 "${components}" build selftest 2>/dev/null && "${components}" path selftest >/dev/null &&
    ok "after SIG${sig}, the next build rebuilds" || fail "after SIG${sig}, the next build failed"
done

# 5. Killed with SIGKILL: the orphaned build is stopped by the next build, which rebuilds.
reset
SELFTEST_SECONDS=60 "${components}" build selftest 2>/dev/null &
pid=$!
if wait_for "build started" 10 has_pgid; then
  pgid="$(cat "$(pgid_file)")"
  kill -KILL "${pid}"; wait "${pid}" 2>/dev/null || true
  if group_alive "${pgid}"; then
    SELFTEST_SECONDS=0.2 "${components}" build selftest 2>"${cache}/k.log" || fail "the build after SIGKILL failed"
    if group_alive "${pgid}"; then fail "the next build did not stop the orphaned build"
    elif ! grep -q "left behind by a killed run" "${cache}/k.log"; then fail "the next build did not say it stopped an orphan"
    elif leftovers || ! "${components}" path selftest >/dev/null; then fail "after SIGKILL: leftovers or no rebuild"
    else ok "after SIGKILL, the next build stops the orphaned build, cleans up and rebuilds"; fi
  else fail "SIGKILL of the script ended its build too (this test expects an orphan to reap)"; fi
fi

echo "components: ${passed} passed, ${failed} failed"
[ "${failed}" = 0 ]
