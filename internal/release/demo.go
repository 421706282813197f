package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/releng-project/releng/internal/example"
	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/notes"
	"github.com/releng-project/releng/internal/project"
)

// DemoOptions are the flags of `releng demo`.
type DemoOptions struct {
	// Dir is where the example project goes ("" for a new temp dir).
	Dir string
	// Log receives progress.
	Log io.Writer
	// NixEnv is appended to the environment of Nix commands.
	NixEnv []string
}

// DemoReport is what the demo published.
type DemoReport struct {
	Dir     string        `json:"dir"`
	Upload  *UploadReport `json:"upload"`
	Verify  *VerifyReport `json:"verify"`
	Local   string        `json:"published_to"`
	Version string        `json:"version"`
}

// Demo copies the embedded example project to a directory, makes it a git
// repository, and runs prepare, tag, build, upload (environment local, no
// prompt) and verify.
func Demo(ctx context.Context, opts DemoOptions) (*DemoReport, error) {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(logw, "releng demo: "+format+"\n", args...) }
	dir := opts.Dir
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "releng-demo-"); err != nil {
			return nil, err
		}
	} else {
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, err
		}
		if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("%s is not empty: give --dir a new or empty directory", dir)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	say("example project in %s", dir)
	if _, err := example.Write(dir, false); err != nil {
		return nil, err
	}
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=releng demo", "GIT_AUTHOR_EMAIL=demo@releng.invalid",
			"GIT_COMMITTER_NAME=releng demo", "GIT_COMMITTER_EMAIL=demo@releng.invalid")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("git %v: %v\n%s", args, err, out)
		}
		return nil
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"config", "user.name", "releng demo"},
		{"config", "user.email", "demo@releng.invalid"},
		{"config", "commit.gpgsign", "false"},
		{"config", "tag.gpgsign", "false"},
		{"add", "-A"},
		{"commit", "-q", "-m", "hello: import the example project"},
	} {
		if err := git(args...); err != nil {
			return nil, err
		}
	}
	open := func() (*project.Project, error) { return project.Open(project.Options{Dir: dir}) }

	p, err := open()
	if err != nil {
		return nil, err
	}
	say("prepare: release notes")
	if _, err := notes.Prepare(ctx, p, notes.PrepareOptions{}); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if p, err = open(); err != nil {
		return nil, err
	}
	say("tag: %s", p.Version.Version)
	if _, err := gitflow.Tag(ctx, p, gitflow.TagOptions{Progress: logw}); err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	if p, err = open(); err != nil {
		return nil, err
	}
	say("build")
	if _, err := Build(ctx, p, BuildOptions{Log: logw, NixEnv: opts.NixEnv}); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	say("upload to the local environment")
	up, err := Upload(ctx, p, UploadOptions{Environment: "local", NoConfirm: true, Log: logw, NixEnv: opts.NixEnv})
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	say("verify")
	ver, err := Verify(ctx, p, VerifyOptions{Environment: "local"})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &DemoReport{Dir: dir, Upload: up, Verify: ver, Local: filepath.Join(p.ReleaseDir(), "local"), Version: p.Version.Version}
	if ver.Failed > 0 {
		return rep, fmt.Errorf("verify: %d of %d checks failed", ver.Failed, len(ver.Checks))
	}
	return rep, nil
}
