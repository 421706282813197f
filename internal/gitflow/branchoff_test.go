package gitflow

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/testenv"
)

func TestBranchOffLocal(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, "2.93.0")
	res := tagRelease(t, r)
	r.Git("checkout", "-q", "2.93.0") // as releng tag leaves it

	var progress strings.Builder
	bo, err := BranchOff(ctx, open(t, r), BranchOffOptions{Progress: &progress})
	if err != nil {
		t.Fatalf("branch-off: %v", err)
	}
	if bo.Branch != "release-2.93" || bo.From != "main" || bo.Commit != res.MergeCommit {
		t.Errorf("branch-off result %+v, want release-2.93 from main at the merge %s", bo, res.MergeCommit)
	}
	if c := r.Git("rev-parse", "refs/heads/release-2.93"); c != res.MergeCommit {
		t.Errorf("release-2.93 at %s, want the merge commit %s", c, res.MergeCommit)
	}
	// Pushed to the built-in local environment's bare repository.
	bare := filepath.Join(r.Dir, "release", "local", "git")
	if bo.Remote.URL != bare || !bo.Remote.Created {
		t.Errorf("remote %+v, want the new bare repository %s", bo.Remote, bare)
	}
	if c, ok := gitOK(r, "--git-dir", bare, "rev-parse", "refs/heads/release-2.93"); !ok || c != res.MergeCommit {
		t.Errorf("release-2.93 on the local remote: %q", c)
	}
	if !strings.Contains(progress.String(), "pushed release-2.93") {
		t.Errorf("progress: %s", progress.String())
	}
	// The branch says official_release false: it is where maintenance
	// releases are made.
	if f := r.Git("show", "release-2.93:version.json"); !strings.Contains(f, `"official_release": false`) {
		t.Errorf("release-2.93's version.json: %s", f)
	}

	// Again: the branch exists locally.
	_, err = BranchOff(ctx, open(t, r), BranchOffOptions{})
	var be *BranchOffError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "already exists locally") {
		t.Fatalf("second branch-off: %v, want a refusal", err)
	}
	// Without the local branch: it exists on the remote.
	r.Git("branch", "-D", "release-2.93")
	_, err = BranchOff(ctx, open(t, r), BranchOffOptions{})
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "already exists on") {
		t.Fatalf("branch-off with the branch on the remote: %v, want a refusal", err)
	}
	if _, ok := gitOK(r, "rev-parse", "-q", "--verify", "refs/heads/release-2.93"); ok {
		t.Errorf("a refused branch-off created the local branch")
	}
}

func TestBranchOffConfiguredRemote(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, "2.93.0")
	target := filepath.Join(t.TempDir(), "target.git")
	if _, err := gitx.InitBare(ctx, target); err != nil {
		t.Fatal(err)
	}
	r.Write("releng.toml", testToml+"\n[git]\nrelease_branch = \"stable/{major}\"\n\n[environments.staging]\ngit_remote = \""+target+"\"\n")
	r.CommitAll("config")
	tagRelease(t, r)
	bo, err := BranchOff(ctx, open(t, r), BranchOffOptions{Environment: "staging"})
	if err != nil {
		t.Fatalf("branch-off: %v", err)
	}
	if bo.Branch != "stable/2.93" || bo.Remote.URL != target {
		t.Errorf("result %+v", bo)
	}
	if _, ok := gitOK(r, "--git-dir", target, "rev-parse", "refs/heads/stable/2.93"); !ok {
		t.Errorf("stable/2.93 not pushed to %s", target)
	}
}

func TestBranchOffRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, r *gitRepo)
		want  string
		kind  any // the error type expected
	}{
		{"no tag yet", func(t *testing.T, r *gitRepo) {}, "run `releng tag` first", &BranchOffError{}},
		{"maintenance release", func(t *testing.T, r *gitRepo) {
			tagRelease(t, r) // 2.90.0
			r.Git("branch", "release-2.90")
			setVersion(t, r, "2.91.0")
			tagRelease(t, r)
			r.Git("push", "-q", "origin", "main")
			r.Git("fetch", "-q", "origin")
			r.Git("checkout", "-q", "release-2.90")
			setVersion(t, r, "2.90.1")
			tagRelease(t, r)
		}, "maintenance release", &BranchOffError{}},
		{"tag without a merge (made by hand)", func(t *testing.T, r *gitRepo) {
			r.Git("tag", "-a", "-m", "by hand", "2.90.0")
		}, "has no merge of tag 2.90.0", &BranchOffError{}},
		{"release_branch gives an unsafe name", func(t *testing.T, r *gitRepo) {
			tagRelease(t, r)
			r.Write("releng.toml", testToml+"[git]\nrelease_branch = \"--upload-pack=x{major}\"\n")
		}, "starts with '-'", &config.Error{}},
		{"environment git_remote is an option", func(t *testing.T, r *gitRepo) {
			tagRelease(t, r)
			r.Write("releng.toml", testToml+"default_environment = \"evil\"\n[environments.evil]\ngit_remote = \"--upload-pack=touch /tmp/pwned\"\n")
		}, "starts with '-'", &config.Error{}},
		{"remote unreachable", func(t *testing.T, r *gitRepo) {
			tagRelease(t, r)
			r.Write("releng.toml", testToml+"default_environment = \"gone\"\n[environments.gone]\ngit_remote = \"./nowhere.git\"\n")
		}, "check the network", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, "2.90.0")
			tc.setup(t, r)
			_, err := BranchOff(ctx, open(t, r), BranchOffOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("branch-off = %v, want an error containing %q", err, tc.want)
			}
			switch tc.kind.(type) {
			case *BranchOffError:
				var be *BranchOffError
				if !errors.As(err, &be) {
					t.Errorf("error %T, want *BranchOffError", err)
				}
			case *config.Error:
				var ce *config.Error
				if !errors.As(err, &ce) {
					t.Errorf("error %T, want *config.Error", err)
				}
			}
			for _, b := range []string{"release-2.90", "release-2.91"} {
				if c, ok := gitOK(r, "rev-parse", "-q", "--verify", "refs/heads/"+b); ok && tc.name != "maintenance release" {
					t.Errorf("branch %s created (%s)", b, c)
				}
			}
		})
	}
}

func TestBranchOffPushFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, "2.93.0")
	target := filepath.Join(t.TempDir(), "target.git")
	if _, err := gitx.InitBare(ctx, target); err != nil {
		t.Fatal(err)
	}
	hooks := filepath.Join(target, "hooks")
	if err := os.WriteFile(filepath.Join(hooks, "pre-receive"), []byte("#!/bin/sh\necho 'branch creation is restricted' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.Write("releng.toml", testToml+"[environments.staging]\ngit_remote = \""+target+"\"\n")
	r.CommitAll("config")
	tagRelease(t, r)
	_, err := BranchOff(ctx, open(t, r), BranchOffOptions{Environment: "staging"})
	if err == nil || !strings.Contains(err.Error(), "branch creation is restricted") || !strings.Contains(err.Error(), "deleted the local branch release-2.93") {
		t.Fatalf("branch-off = %v, want the push error and the rollback", err)
	}
	if _, ok := gitOK(r, "rev-parse", "-q", "--verify", "refs/heads/release-2.93"); ok {
		t.Errorf("local branch left behind")
	}
}

func TestResolveRemote(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		env     string // the [environments.x] body
		want    string // URL, with ROOT for the project root
		wantErr string
	}{
		{"URL", `git_remote = "ssh://git@git.example.org/lix"`, "ssh://git@git.example.org/lix", ""},
		{"scp-like", `git_remote = "git@example.org:lix.git"`, "git@example.org:lix.git", ""},
		{"relative path", `git_remote = "../releng-target"`, "ROOT/../releng-target", ""},
		{"absolute path", `git_remote = "/srv/git/lix.git"`, "/srv/git/lix.git", ""},
		{"guess matches origin", `git_remote = { guess = 'remote\.git$' }`, "REMOTE", ""},
		{"guess matches nothing", `git_remote = { guess = '^ssh://gerrit' }`, "", "no `git remote -v` URL matches"},
		{"guess is not a regexp", `git_remote = { guess = '(' }`, "", "regular expression"},
		{"option", `git_remote = "--upload-pack=x"`, "", "starts with '-'"},
		{"ext transport", `git_remote = "ext::sh -c touch% /tmp/pwned"`, "", "run commands"},
		{"unset", `colour = "red"`, "", "not set"},
		{"wrong type", `git_remote = 3`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, "2.93.0")
			r.Write("releng.toml", testToml+"[environments.x]\n"+tc.env+"\n")
			p, err := openErr(r)
			if err != nil {
				// The config loader may reject it first: fine, if it says so.
				if tc.want == "" && strings.Contains(err.Error(), tc.wantErr) {
					return
				}
				t.Fatalf("open: %v", err)
			}
			rem, err := ResolveRemote(ctx, p, "x")
			if tc.wantErr != "" || tc.want == "" {
				var ce *config.Error
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveRemote = %+v, %v; want a config error containing %q", rem, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if strings.HasPrefix(want, "ROOT") {
				want = filepath.Join(p.Root, strings.TrimPrefix(want, "ROOT"))
			}
			want = strings.ReplaceAll(want, "REMOTE", r.Remote)
			if rem.URL != want {
				t.Errorf("URL %q, want %q", rem.URL, want)
			}
		})
	}
}

func TestResolveRemoteBuiltInLocal(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, "2.93.0")
	p := open(t, r)
	rem, err := ResolveRemote(ctx, p, "local")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(p.Root, "release", "local", "git")
	if rem.URL != want || !rem.Created {
		t.Errorf("%+v, want %s created", rem, want)
	}
	if _, err := os.Stat(filepath.Join(want, "HEAD")); err != nil {
		t.Errorf("no bare repository: %v", err)
	}
	again, err := ResolveRemote(ctx, p, "")
	if err != nil || again.URL != want || again.Created {
		t.Errorf("second resolve %+v, %v: want the same repository, not created again", again, err)
	}
	if st := r.Git("status", "--porcelain"); st != "" {
		t.Errorf("release/ shows up in git status (not excluded):\n%s", st)
	}
}

// openErr loads the project at r, returning the error instead of failing.
func openErr(r *testenv.GitRepo) (*project.Project, error) {
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err == nil {
		p.Git.Env = testenv.GitEnv
	}
	return p, err
}
