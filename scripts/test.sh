#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every
# test with RELENG_REQUIRE_INTEGRATION=1 (a missing component fails).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"
export RELENG_REQUIRE_INTEGRATION=1
go vet ./...
unformatted=$(gofmt -l cmd internal bench 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi
go test -timeout 40m -count=1 "$@" ./...
