package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/example"
	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/notes"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
)

// DemoOptions are the flags of `releng demo`.
type DemoOptions struct {
	// Dir is where the example project goes ("" for a new temp dir).
	Dir string
	// NixLog receives Nix's build log.
	NixLog io.Writer
	// Run is the run's context: progress, releng's version.
	Run *runctx.Run
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
	// Look are commands a user can paste to look at what was published.
	Look []LookCommand `json:"look"`
}

// LookCommand is a shell command that shows one published thing.
type LookCommand struct {
	What    string `json:"what"`
	Command string `json:"command"`
}

// Demo copies the embedded example project to a directory, makes it a git
// repository, and runs prepare, tag, build, upload (environment local, no
// prompt) and verify.
func Demo(ctx context.Context, opts DemoOptions) (*DemoReport, error) {
	logw := opts.NixLog
	if logw == nil {
		logw = io.Discard
	}
	say := func(format string, args ...any) { opts.Run.Infof("demo", format, args...) }
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
	rec, err := Build(ctx, p, BuildOptions{NixLog: logw, Run: opts.Run, NixEnv: opts.NixEnv})
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	say("upload to the local environment")
	up, err := Upload(ctx, p, UploadOptions{Environment: "local", NoConfirm: true, Run: opts.Run, NixEnv: opts.NixEnv})
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	say("verify")
	ver, err := Verify(ctx, p, VerifyOptions{Environment: "local", Run: opts.Run, NixEnv: opts.NixEnv})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &DemoReport{Dir: dir, Upload: up, Verify: ver, Local: filepath.Join(p.ReleaseDir(), "local"), Version: p.Version.Version}
	if rep.Look, err = lookCommands(ctx, p, rec); err != nil {
		return rep, err
	}
	if ver.Failed > 0 {
		return rep, fmt.Errorf("verify: %d of %d checks failed", ver.Failed, len(ver.Checks))
	}
	return rep, nil
}

// lookCommands are the commands that show what the demo published to the
// built-in local environment, with absolute paths, ready to paste.
func lookCommands(ctx context.Context, p *project.Project, rec *artifacts.Record) ([]LookCommand, error) {
	t, err := OpenTarget(ctx, p, "local", TargetOptions{})
	if err != nil {
		return nil, err
	}
	keys, err := t.VerifyKeys(p)
	if err != nil {
		return nil, err
	}
	var look []LookCommand
	if len(keys) > 0 && len(rec.Manifest) > 0 {
		path := rec.Manifest[sortedKeys(rec.Manifest)[0]]
		look = append(look, LookCommand{"the binary cache (substitute the release from it into a new store, checking its signature)",
			`nix-store --store "$(mktemp -d)" -r ` + shellQuote(path) + " --option substituters " + shellQuote(cacheBase(t.CacheURI.Raw)) +
				" --option trusted-public-keys " + shellQuote(keys[0].String()) + " --option require-sigs true"})
	}
	for _, it := range t.Env.Images {
		if d, err := registry.ParseDest(it.Repository, p.Root); err == nil && d.Dir != "" {
			look = append(look, LookCommand{"the image index", "skopeo inspect --raw " + shellQuote(d.String()+":"+rec.Version)})
		}
	}
	if dir, ok := config.LocalDirOf(t.Env.Releases); ok {
		vdir := filepath.Join(p.Config.Abs(dir), filepath.FromSlash(strings.TrimPrefix(rec.VersionDir, "artifacts/")))
		look = append(look, LookCommand{"the release files, checked against SHA256SUMS", "cd " + shellQuote(vdir) + " && sha256sum -c SHA256SUMS"})
	}
	if dir, ok := config.LocalDirOf(t.Env.Docs); ok {
		look = append(look, LookCommand{"the manual", "ls -R " + shellQuote(filepath.Join(p.Config.Abs(dir), "manual", rec.Name))})
	}
	if remote, ok := config.LocalGitRemoteOf(t.Env.GitRemoteURL()); ok {
		look = append(look, LookCommand{"the git remote", "git --git-dir " + shellQuote(p.Config.Abs(remote)) + " log --oneline --decorate -n 3 " + shellQuote(rec.Version)})
	}
	return look, nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cacheBase is a store URI without its ?parameters (what substituters= takes).
func cacheBase(uri string) string {
	base, _, _ := strings.Cut(uri, "?")
	return base
}
