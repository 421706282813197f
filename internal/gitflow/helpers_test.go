package gitflow

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/testenv"
)

type gitRepo = testenv.GitRepo

const testToml = "name = \"lix\"\n"

func versionJSON(v string, official bool) string {
	o := "false"
	if official {
		o = "true"
	}
	return "{\n    \"version\": \"" + v + "\",\n    \"official_release\": " + o + ",\n    \"release_name\": \"Bici Bici\"\n}\n"
}

// newRepo makes a checkout on main with releng.toml and version.json at
// version v committed and pushed to origin.
func newRepo(t *testing.T, v string) *testenv.GitRepo {
	t.Helper()
	r := testenv.NewGitRepo(t)
	r.Write("releng.toml", testToml)
	r.Write("version.json", versionJSON(v, false))
	r.Write("README", "hello\n")
	r.CommitAll("initial")
	r.Git("push", "-q", "origin", "main")
	r.Git("fetch", "-q", "origin")
	return r
}

// open loads the project at r, with git isolated from the user's config.
func open(t *testing.T, r *testenv.GitRepo) *project.Project {
	t.Helper()
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatalf("open project: %v", err)
	}
	p.Git.Env = testenv.GitEnv
	return p
}

// setVersion commits a new version on the current branch.
func setVersion(t *testing.T, r *testenv.GitRepo, v string) {
	t.Helper()
	r.Write("version.json", versionJSON(v, false))
	r.CommitAll("version " + v)
}

// tagRelease runs the tag dance for the current version and returns
// HEAD to the branch it started from.
func tagRelease(t *testing.T, r *testenv.GitRepo) *TagResult {
	t.Helper()
	res, err := Tag(context.Background(), open(t, r), TagOptions{})
	if err != nil {
		t.Fatalf("tag: %v", err)
	}
	r.Git("checkout", "-q", res.Branch)
	return res
}

// hook installs an executable git hook.
func hook(t *testing.T, r *testenv.GitRepo, name, script string) {
	t.Helper()
	dir := filepath.Join(r.Dir, ".git", "hooks")
	r.Git("config", "core.hooksPath", dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// gitOK runs git in r and reports whether it succeeded, with its output.
func gitOK(r *testenv.GitRepo, args ...string) (string, bool) {
	g := &gitx.Repo{Dir: r.Dir, Env: testenv.GitEnv}
	out, err := g.Output(context.Background(), args...)
	return out, err == nil
}
