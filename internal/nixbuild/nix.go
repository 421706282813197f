// Package nixbuild evaluates a project's release jobs and realises them with
// the installed Nix (exec with an argv, never a shell): `nix-eval-jobs` when
// it is on PATH, else `nix eval --json` with a flattening --apply that works
// from Nix 2.8 on; builds with `nix-store --realise` and GC roots.
package nixbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixstore"
)

// Nix runs Nix commands for a project.
type Nix struct {
	// Dir is the directory commands run in (the project root).
	Dir string
	// Env is appended to the environment (e.g. NIX_CONF_DIR in tests).
	Env []string
	// Log receives Nix's stderr (build logs) as it comes; may be nil.
	Log io.Writer
}

// features is passed to every nix command so that a Nix without flakes
// enabled in nix.conf still works.
var features = []string{"--extra-experimental-features", "nix-command flakes"}

// CommandError is a failed Nix command with the tail of its stderr.
type CommandError struct {
	Args []string
	Err  error
	Tail string
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s failed: %v", strings.Join(e.Args, " "), e.Err)
	if e.Tail != "" {
		msg += "\n" + e.Tail
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// run runs name with args; stdout is returned (at most fsutil.MaxPathInfo
// bytes: a command printing more is stopped, and that is the error),
// stderr streams to n.Log and its tail is kept for errors.
func (n *Nix) run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s is not installed: install Nix (on Debian: apt-get install nix-bin): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = n.Dir
	cmd.Env = append(os.Environ(), n.Env...)
	cmd.Stdin = stdin
	tail := &nixstore.TailBuffer{Max: 64 << 10}
	if n.Log != nil {
		cmd.Stderr = io.MultiWriter(n.Log, tail)
	} else {
		cmd.Stderr = tail
	}
	out, err := nixstore.CommandOutput(cmd, name, fsutil.MaxPathInfo)
	if err != nil {
		return out, &CommandError{Args: append([]string{name}, args...), Err: err, Tail: lastLines(tail.String(), 25)}
	}
	return out, nil
}

// lastLines returns the last n lines of s, trimmed.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
