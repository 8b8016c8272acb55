#!/usr/bin/env bash
# make licenses: the licence of every module linked into the operator's binary (google/go-licenses,
# offline from the module cache), checked against hack/licenses/policy.txt, and the report written
# to charts/tenant-operator/THIRD_PARTY_LICENSES.csv, which ships with the chart. Fails on a module
# outside the policy, and on a report that differs from the committed one (commit it).
#
#   hack/licenses.sh GO_LICENSES_BINARY
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
bin="$1"
report="charts/tenant-operator/THIRD_PARTY_LICENSES.csv"
allowed="$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' hack/licenses/policy.txt | awk '{print $1}' | paste -sd, -)"
# Offline, go-licenses cannot look up the licences' web addresses; only those warnings are dropped.
quiet() { grep -vE "Error discovering license URL|contains non-Go code that can't be inspected|^/.*[.]s$" >&2 || true; }
"${bin}" check . --ignore github.com/tenantctl/tenant-operator --allowed_licenses="${allowed}" 2> >(quiet)
"${bin}" report . --ignore github.com/tenantctl/tenant-operator --template hack/licenses/report.tmpl 2> >(quiet) \
  | sed '/^$/d' > "${report}.tmp"
mv "${report}.tmp" "${report}"
modules=$(($(wc -l < "${report}") - 1))
echo "licenses: ${modules} packages linked into the binary, every licence allowed (${allowed}); report: ${report}"
cut -d, -f3 "${report}" | tail -n +2 | sort | uniq -c | sort -rn | sed 's/^/licenses: /'
if ! git diff --quiet -- "${report}" 2>/dev/null || ! git ls-files --error-unmatch "${report}" >/dev/null 2>&1; then
  echo "licenses: ${report} changed: commit it (the chart ships it)" >&2
  exit 1
fi
