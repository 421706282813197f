package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a temporary git work tree on branch main with a bare remote
// named origin.
type GitRepo struct {
	t      testing.TB
	Dir    string
	Remote string
}

// GitEnv makes git commands independent of the user's configuration.
var GitEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=releng test", "GIT_AUTHOR_EMAIL=test@releng.invalid",
	"GIT_COMMITTER_NAME=releng test", "GIT_COMMITTER_EMAIL=test@releng.invalid",
	"GIT_AUTHOR_DATE=2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2025-01-01T00:00:00Z",
}

// NewGitRepo creates the work tree and its bare remote.
func NewGitRepo(t testing.TB) *GitRepo {
	t.Helper()
	LookPath(t, "git", "apt-get install -y git")
	base := t.TempDir()
	r := &GitRepo{t: t, Dir: filepath.Join(base, "work"), Remote: filepath.Join(base, "remote.git")}
	r.run(base, "init", "-q", "--bare", "-b", "main", r.Remote)
	r.run(base, "init", "-q", "-b", "main", r.Dir)
	r.Git("config", "user.name", "releng test")
	r.Git("config", "user.email", "test@releng.invalid")
	r.Git("config", "commit.gpgsign", "false")
	r.Git("config", "tag.gpgsign", "false")
	r.Git("remote", "add", "origin", r.Remote)
	return r
}

func (r *GitRepo) run(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), GitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Git runs git in the work tree and returns its trimmed output.
func (r *GitRepo) Git(args ...string) string {
	r.t.Helper()
	return r.run(r.Dir, args...)
}

// Write writes a file (relative to the work tree), creating directories.
func (r *GitRepo) Write(rel, content string) {
	r.t.Helper()
	p := filepath.Join(r.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// CommitAll stages everything and commits it with msg.
func (r *GitRepo) CommitAll(msg string) string {
	r.t.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}
