#!/usr/bin/env bash
# Regenerates every generated file and fails if anything differs from what is committed, so a change
# to api/ or to an RBAC marker cannot land without its CRDs, deepcopy and ClusterRole.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

make --no-print-directory manifests generate fmt chart >/dev/null 2>&1
go mod tidy

generated=(api config go.mod go.sum internal controllers main.go charts)
changed="$(git status --porcelain --untracked-files=all -- "${generated[@]}")"
if [ -n "${changed}" ]; then
  echo "verify: generated files are stale or uncommitted; run 'make manifests generate fmt chart && go mod tidy' and commit:" >&2
  echo "${changed}" >&2
  git --no-pager diff --stat -- "${generated[@]}" >&2
  exit 1
fi
# go fmt skips files behind build tags (the e2e and cluster suites); gofmt reads every file.
unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [ -n "${unformatted}" ]; then
  echo "verify: not gofmt-formatted (run gofmt -w):" >&2
  echo "${unformatted}" >&2
  exit 1
fi
echo "verify: generated files are up to date"
