package cli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBranchOffCommand(t *testing.T) {
	r := tagRepo(t, "2.93.0")
	if _, errOut, code := relengRun(t, "-C", r.Dir, "tag"); code != 0 {
		t.Fatalf("tag: %s", errOut)
	}
	merge := r.Git("rev-parse", "main")

	out, errOut, code := relengRun(t, "-C", r.Dir, "branch-off")
	if code != 0 {
		t.Fatalf("branch-off: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "created release-2.93 at "+merge[:12]) || !strings.Contains(out, "environment local") {
		t.Errorf("stdout:\n%s", out)
	}
	bare := filepath.Join(r.Dir, "release", "local", "git")
	if c, err := exec.Command("git", "--git-dir", bare, "rev-parse", "refs/heads/release-2.93").Output(); err != nil || strings.TrimSpace(string(c)) != merge {
		t.Errorf("release-2.93 in %s: %q %v", bare, c, err)
	}

	_, errOut, code = relengRun(t, "-C", r.Dir, "branch-off")
	if code != 1 || !strings.Contains(errOut, "release-2.93 already exists") || !strings.Contains(errOut, "fix:") {
		t.Errorf("second branch-off: exit %d\n%s", code, errOut)
	}
}

func TestBranchOffCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		args []string
		code int
		want string
	}{
		{"before tag", "", nil, 1, "run `releng tag` first"},
		{"unknown environment", "", []string{"--environment", "nope"}, 2, "no environment \"nope\""},
		{"environment named like an option", "", []string{"--environment", "--upload-pack=x"}, 2, ""},
		{"git_remote that is an option", "[environments.evil]\ngit_remote = \"--upload-pack=x\"\n", []string{"--environment", "evil"}, 2, "starts with '-'"},
		{"release_branch that is an option", "[git]\nrelease_branch = \"-{major}\"\n", nil, 2, "release_branch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tagRepo(t, "2.93.0")
			if tc.toml != "" {
				r.Write("releng.toml", "name = \"lix\"\n"+tc.toml)
				r.CommitAll("config")
			}
			if tc.name != "before tag" {
				if _, errOut, code := relengRun(t, "-C", r.Dir, "tag"); code != 0 {
					t.Fatalf("tag: %s", errOut)
				}
			}
			_, errOut, code := relengRun(t, append([]string{"-C", r.Dir, "branch-off"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, errOut)
			}
			if !gitFails(r, "rev-parse", "-q", "--verify", "refs/heads/release-2.93") {
				t.Errorf("branch created")
			}
		})
	}
}
