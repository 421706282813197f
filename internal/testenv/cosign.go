package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CosignVersion is the pinned cosign the signature tests check releng's
// image signatures with (scripts/install-deps.sh installs it).
const CosignVersion = "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"

// Cosign returns the path of cosign — on PATH or in Go's bin directory —
// or skips t (fails it under RELENG_REQUIRE_INTEGRATION=1).
func Cosign(t testing.TB) string {
	t.Helper()
	return installedTool(t, "cosign", "go install "+CosignVersion+" (scripts/install-deps.sh)")
}

// installedTool returns the path of a program scripts/install-deps.sh
// builds — on PATH or in Go's bin directory — or skips t (fails it under
// RELENG_REQUIRE_INTEGRATION=1) saying how to install it.
func installedTool(t testing.TB, name, install string) string {
	t.Helper()
	if p := goBinary(name); p != "" {
		return p
	}
	Missing(t, name, install)
	return ""
}

// goBinary finds a program on PATH or in Go's bin directory (where
// scripts/install-deps.sh puts what it builds with go install); "" if
// neither has it.
func goBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{os.Getenv("GOBIN"), filepath.Join(os.Getenv("GOPATH"), "bin"), filepath.Join(os.Getenv("HOME"), "go", "bin")} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}
