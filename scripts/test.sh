#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every
# test with RELENG_REQUIRE_INTEGRATION=1 (a missing component fails).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"
export RELENG_REQUIRE_INTEGRATION=1
go vet ./...
# Dead code: every function of a production package must be reachable from
# releng's main (deadcode exits 0 whatever it finds, hence the test of its
# output). internal/testenv and internal/bucket/buckettest are left out: they
# are test-support packages, imported only by _test.go files, so all of their
# code is unreachable from main by design. (deadcode -test would count them
# live, but would also count production code that only tests call as live.)
dead=$(deadcode ./...)
dead=$(printf '%s\n' "$dead" | grep -Ev '^internal/(testenv|bucket/buckettest)/' || true)
if [ -n "$dead" ]; then
  echo "deadcode: unreachable functions (delete them, or move what only tests use into a _test.go file):" >&2
  echo "$dead" >&2; exit 1
fi
unformatted=$(gofmt -l cmd internal bench 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi
go test -timeout 40m -count=1 "$@" ./...
# The pure-Go zstd encoder of builds without cgo (the default one is
# libzstd): it builds, and its frames decode to their input.
CGO_ENABLED=0 go build -o /dev/null ./cmd/releng
go test -count=1 -tags gozstd -run 'Frame' ./internal/binarycache/
