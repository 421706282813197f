// Package nixbuild evaluates a project's release jobs and realises them with
// the installed Nix (exec with an argv, never a shell): `nix-eval-jobs` when
// it is on PATH, else `nix eval --json` with a flattening --apply that works
// from Nix 2.8 on; builds with `nix-store --realise` and GC roots.
package nixbuild

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
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

// run runs name with args; stdout is returned, stderr streams to n.Log and
// its tail is kept for errors.
func (n *Nix) run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s is not installed: install Nix (on Debian: apt-get install nix-bin): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = n.Dir
	cmd.Env = append(os.Environ(), n.Env...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	tail := &tailBuffer{max: 64 << 10}
	cmd.Stdout = &out
	if n.Log != nil {
		cmd.Stderr = io.MultiWriter(n.Log, tail)
	} else {
		cmd.Stderr = tail
	}
	if err := cmd.Run(); err != nil {
		return out.Bytes(), &CommandError{Args: append([]string{name}, args...), Err: err, Tail: tail.lastLines(25)}
	}
	return out.Bytes(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
