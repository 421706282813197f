package nar

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

// nixEnv runs the real Nix with testenv's private configuration.
type nixEnv struct {
	*testenv.Nix
}

// requireNix returns a Nix environment, or skips the test when Nix is not
// installed (fails instead with RELENG_REQUIRE_INTEGRATION=1).
func requireNix(t testing.TB) *nixEnv {
	t.Helper()
	return &nixEnv{testenv.SetupNix(t)}
}

func (n *nixEnv) command(name string, args ...string) *exec.Cmd {
	return n.Command(name, args...)
}

// run runs a Nix command and returns its standard output.
func (n *nixEnv) run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := n.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}
