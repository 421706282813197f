package nar

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// nixEnv runs the real Nix with a private configuration (no sandbox, no
// build users, no substituters), as SPEC §13 asks.
type nixEnv struct {
	env []string
}

var (
	nixOnce sync.Once
	nixConf string
	nixErr  string
)

// requireNix returns a Nix environment, or skips the test when Nix is not
// installed (fails instead with RELENG_REQUIRE_INTEGRATION=1).
func requireNix(t testing.TB) *nixEnv {
	t.Helper()
	nixOnce.Do(func() {
		for _, tool := range []string{"nix", "nix-store"} {
			if _, err := exec.LookPath(tool); err != nil {
				nixErr = tool + " is not installed (Debian: apt-get install nix-bin)"
				return
			}
		}
		dir, err := os.MkdirTemp("", "releng-nix-conf-")
		if err != nil {
			nixErr = err.Error()
			return
		}
		conf := "sandbox = false\nbuild-users-group =\nsubstituters =\nexperimental-features = nix-command flakes\n"
		if err := os.WriteFile(filepath.Join(dir, "nix.conf"), []byte(conf), 0o644); err != nil {
			nixErr = err.Error()
			return
		}
		nixConf = dir
	})
	if nixErr != "" {
		if os.Getenv("RELENG_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("integration test needs Nix: %s", nixErr)
		}
		t.Skipf("skipping: %s", nixErr)
	}
	return &nixEnv{env: []string{"NIX_CONF_DIR=" + nixConf}}
}

func (n *nixEnv) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), n.env...)
	return cmd
}

// run runs a Nix command and returns its standard output.
func (n *nixEnv) run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := n.command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}
