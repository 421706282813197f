package testenv

import "testing"

// UmociZstdVersion is the umoci the zstd layer tests unpack with: Debian
// 12's umoci (0.4.7) refuses zstd layers by media type, 0.6.0 reads them.
// scripts/install-deps.sh builds it from the module's source as
// umoci-0.6.0 (its go.mod has a replace directive, so `go install
// pkg@version` refuses it).
const UmociZstdVersion = "github.com/opencontainers/umoci@v0.6.0"

// UmociZstd returns the path of umoci-0.6.0 — on PATH or in Go's bin
// directory — or skips t (fails it under RELENG_REQUIRE_INTEGRATION=1).
func UmociZstd(t testing.TB) string {
	t.Helper()
	return installedTool(t, "umoci-0.6.0", "scripts/install-deps.sh (builds "+UmociZstdVersion+")")
}
