// Package gitx runs git (exec with an argv, never a shell) and answers the
// questions releng asks of a checkout: which branch, which tag, clean or not.
package gitx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
)

// Repo is a git working tree.
type Repo struct {
	Dir string
	// Env is appended to the environment of every git command.
	Env []string
}

// Error is a failed git command, with the tail of its stderr.
type Error struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("git %s: %v", showArgs(e.Args), e.Err)
	if t := tail(e.Stderr, 15); t != "" {
		msg += "\n" + t
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// showArgs renders an argv for an error: messages cut to their first
// line, arguments with spaces quoted.
func showArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if first, _, multi := strings.Cut(a, "\n"); multi {
			a = first + "…"
		}
		if strings.ContainsAny(a, " \t\"'") || a == "" {
			a = fmt.Sprintf("%q", a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// ErrNotRepo is returned by Open when the directory is not in a git work tree.
var ErrNotRepo = errors.New("not a git repository")

// Open returns the repository whose work tree contains dir.
func Open(dir string) (*Repo, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("git is not installed (install it, e.g. apt-get install git): %w", err)
	}
	r := &Repo{Dir: dir}
	top, err := r.Output(context.Background(), "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("%s: %w (run releng inside the project's checkout, or pass -C DIR)", dir, ErrNotRepo)
	}
	r.Dir = top
	return r, nil
}

// Run runs git with args in the repository; stdout is discarded.
func (r *Repo) Run(ctx context.Context, args ...string) error {
	_, err := r.Output(ctx, args...)
	return err
}

// Output runs git with args and returns its stdout, trimmed of the final newline.
func (r *Repo) Output(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_TERMINAL_PROMPT=0")
	cmd.Env = append(cmd.Env, r.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return "", &Error{Args: args, Stderr: errb.String(), Err: err}
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// Branch returns the current branch, or "" when HEAD is detached.
func (r *Repo) Branch(ctx context.Context) (string, error) {
	out, err := r.Output(ctx, "symbolic-ref", "--quiet", "--short", "HEAD")
	if err != nil {
		var ge *Error
		if errors.As(err, &ge) {
			return "", nil
		}
		return "", err
	}
	return out, nil
}

// Head returns the commit HEAD points at ("" in a repository with no commits).
func (r *Repo) Head(ctx context.Context) (string, error) {
	out, err := r.Output(ctx, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil {
		return "", nil
	}
	return out, nil
}

// TagsAtHead lists the tags pointing at HEAD.
func (r *Repo) TagsAtHead(ctx context.Context) ([]string, error) {
	out, err := r.Output(ctx, "tag", "--points-at", "HEAD")
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// TagCommit returns the commit a tag points at, or "" if there is no such tag.
func (r *Repo) TagCommit(ctx context.Context, tag string) (string, error) {
	out, err := r.Output(ctx, "rev-parse", "--verify", "--quiet", "refs/tags/"+tag+"^{commit}")
	if err != nil {
		return "", nil
	}
	return out, nil
}

// Dirty lists the tracked files that are modified or staged (porcelain
// lines); untracked files do not make a tree dirty.
func (r *Repo) Dirty(ctx context.Context) ([]string, error) {
	out, err := r.Output(ctx, "status", "--porcelain", "--untracked-files=no")
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// GitDir returns the absolute path of the .git directory.
func (r *Repo) GitDir(ctx context.Context) (string, error) {
	out, err := r.Output(ctx, "rev-parse", "--absolute-git-dir")
	return out, err
}

// Exclude makes sure pattern is in .git/info/exclude (never .gitignore).
func (r *Repo) Exclude(ctx context.Context, pattern string) error {
	gd, err := r.GitDir(ctx)
	if err != nil {
		return err
	}
	p := filepath.Join(gd, "info", "exclude")
	data, err := fsutil.ReadFile(p, fsutil.MaxConfig)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == pattern {
			return nil
		}
	}
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, '\n')
	}
	data = append(data, []byte(pattern+"\n")...)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}
