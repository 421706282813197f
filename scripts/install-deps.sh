#!/usr/bin/env bash
# Installs what releng's tests and demo need on a Debian machine with Go:
# Nix (Debian's nix-bin), the Docker registry, skopeo, umoci, git, python3's
# packaging (differential version tests), openssh-client (ssh-keygen: the
# signature tests), the pinned MinIO, the pinned cosign (image signature
# tests only), the pinned umoci 0.6.0 as umoci-0.6.0 (zstd layer tests:
# Debian's umoci 0.4.7 refuses them) and the pinned deadcode
# (scripts/test.sh's dead code check).
# Idempotent: it installs only what is missing.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
DEADCODE_VERSION=v0.52.0 # golang.org/x/tools
COSIGN_VERSION=v2.6.5     # github.com/sigstore/cosign/v2 (testenv.CosignVersion)
UMOCI_VERSION=v0.6.0      # github.com/opencontainers/umoci (testenv.UmociZstdVersion): reads zstd layers

need=()
command -v nix-store >/dev/null || need+=(nix-bin)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v git >/dev/null || need+=(git)
command -v zstd >/dev/null || need+=(zstd)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
python3 -c 'import packaging.version' 2>/dev/null || /usr/bin/python3 -c 'import packaging.version' 2>/dev/null || need+=(python3-packaging)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/minio" ] || [ "$(cat "$gobin/.minio-version" 2>/dev/null)" != "$MINIO_VERSION" ]; then
  echo "install-deps: go install github.com/minio/minio@$MINIO_VERSION (about 5 minutes the first time)" >&2
  GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" > "$gobin/.minio-version"
fi
if [ ! -x "$gobin/deadcode" ] || [ "$(cat "$gobin/.deadcode-version" 2>/dev/null)" != "$DEADCODE_VERSION" ]; then
  echo "install-deps: go install golang.org/x/tools/cmd/deadcode@$DEADCODE_VERSION" >&2
  GOFLAGS=-mod=mod go install "golang.org/x/tools/cmd/deadcode@$DEADCODE_VERSION"
  echo "$DEADCODE_VERSION" > "$gobin/.deadcode-version"
fi
if [ ! -x "$gobin/cosign" ] || [ "$(cat "$gobin/.cosign-version" 2>/dev/null)" != "$COSIGN_VERSION" ]; then
  echo "install-deps: go install github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION (a few minutes the first time)" >&2
  GOFLAGS=-mod=mod go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION"
  echo "$COSIGN_VERSION" > "$gobin/.cosign-version"
fi
if [ ! -x "$gobin/umoci-0.6.0" ] || [ "$(cat "$gobin/.umoci-version" 2>/dev/null)" != "$UMOCI_VERSION" ]; then
  # umoci's go.mod has a replace directive, which `go install pkg@version`
  # refuses: build it from the module's source, as its own main module.
  echo "install-deps: building github.com/opencontainers/umoci@$UMOCI_VERSION as umoci-0.6.0" >&2
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/opencontainers/umoci@$UMOCI_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "install-deps: go mod download of umoci@$UMOCI_VERSION gave no source directory" >&2; exit 1; }
  tmp=$(mktemp -d)
  cp -r "$src/." "$tmp/"
  chmod -R u+w "$tmp"
  (cd "$tmp" && GOFLAGS=-mod=mod go build -o "$gobin/umoci-0.6.0.tmp" ./cmd/umoci)
  rm -rf "$tmp"
  mv "$gobin/umoci-0.6.0.tmp" "$gobin/umoci-0.6.0"
  echo "$UMOCI_VERSION" > "$gobin/.umoci-version"
fi
