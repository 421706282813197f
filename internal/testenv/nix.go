package testenv

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
)

// Nix is a Nix configuration usable as root without a daemon (Debian's
// nix-bin): single-user, no sandbox, no substituters, flakes enabled, the
// real /nix/store.
type Nix struct {
	// ConfDir is the NIX_CONF_DIR holding nix.conf.
	ConfDir string
	// Env is to be appended to os.Environ() for every nix command.
	Env []string
}

// NixConf is the nix.conf the tests (and `releng demo`) use.
func NixConf() string {
	conf := "sandbox = false\nsubstituters =\nexperimental-features = nix-command flakes\n"
	if _, err := user.LookupGroup("nixbld"); err != nil {
		conf += "build-users-group =\n"
	}
	return conf
}

// SetupNix checks that Nix is installed and returns a configuration for it.
func SetupNix(t testing.TB) *Nix {
	t.Helper()
	for _, p := range []string{"nix", "nix-store", "nix-instantiate", "nix-build"} {
		LookPath(t, p, "apt-get install -y nix-bin")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nix.conf"), []byte(NixConf()), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Nix{ConfDir: dir, Env: []string{"NIX_CONF_DIR=" + dir, "NIX_USER_CONF_FILES=" + filepath.Join(dir, "nix.conf")}}
}

// Command returns an exec.Cmd for a Nix program with this configuration.
func (n *Nix) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), n.Env...)
	return cmd
}
