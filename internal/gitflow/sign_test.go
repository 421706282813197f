package gitflow

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/signing"
	"github.com/releng-project/releng/internal/testenv"
)

// TestTagSigned: releng tag signs the tag with the release_key of the
// chosen environment (default: default_environment), git verify-tag
// accepts it with the public key alone, and a key file others may read is
// refused before the tag dance changes anything.
func TestTagSigned(t *testing.T) {
	testenv.LookPath(t, "ssh-keygen", "apt-get install -y openssh-client")
	key := filepath.Join(t.TempDir(), "release.key")
	_, pub, err := signing.GenerateFiles(key, "lix-release-staging")
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(t.TempDir(), "allowed_signers")
	os.WriteFile(allowed, []byte("lix-release "+pub.String()+"\n"), 0o644)
	toml := "name = \"lix\"\ndefault_environment = \"staging\"\n\n[environments.staging]\nrelease_key = \"" + key + "\"\n\n[environments.other]\n"
	for _, tt := range []struct {
		name    string
		mode    os.FileMode
		env     string
		signed  bool
		refused string
	}{
		{"default environment's key", 0o600, "", true, ""},
		{"named environment without a key", 0o600, "other", false, ""},
		{"key readable by others", 0o644, "", false, "chmod 600 " + key},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := testenv.NewGitRepo(t)
			r.Write("releng.toml", toml)
			r.Write("version.json", versionJSON("2.90.0", false))
			head := r.CommitAll("initial")
			os.Chmod(key, tt.mode)
			res, err := Tag(context.Background(), open(t, r), TagOptions{Environment: tt.env})
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), key) {
					t.Fatalf("Tag = %v, want refused naming %s", err, tt.refused)
				}
				if _, ok := gitOK(r, "rev-parse", "-q", "--verify", "refs/tags/2.90.0"); ok || r.Git("rev-parse", "HEAD") != head || r.Git("status", "--porcelain") != "" {
					t.Errorf("the refused tag changed the repository")
				}
				return
			}
			if err != nil {
				t.Fatalf("tag: %v", err)
			}
			cmd := exec.Command("git", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-tag", "2.90.0")
			cmd.Dir = r.Dir
			out, verr := cmd.CombinedOutput()
			if tt.signed != (verr == nil) || tt.signed != (res.SignedBy == pub.Fingerprint()) {
				t.Errorf("signed %v: git verify-tag: %v %s; SignedBy %q", tt.signed, verr, out, res.SignedBy)
			}
		})
	}
}
