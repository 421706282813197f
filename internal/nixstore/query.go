package nixstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/releng-project/releng/internal/fsutil"
)

// Nix runs the `nix` command line to query a store.
type Nix struct {
	// Command is the nix executable; "nix" (looked up in PATH) if empty.
	Command string
	// Env is added to the environment of every command.
	Env []string
	// StoreDir is the store directory; DefaultStoreDir if empty.
	StoreDir string
	// Store is passed as --store (e.g. a binary cache URI); the default
	// store if empty.
	Store string
	// Derivation passes --derivation: a .drv path stands for itself (and
	// its closure is the derivations and sources), not for its outputs.
	Derivation bool
}

// Getenv is the value key has for the commands n runs: Env's last
// KEY=VALUE for it over the process's environment, as exec sees them.
func (n Nix) Getenv(key string) string {
	v := os.Getenv(key)
	for _, kv := range n.Env {
		if rest, ok := strings.CutPrefix(kv, key+"="); ok {
			v = rest
		}
	}
	return v
}

// PathInfo runs `nix path-info --json` on paths (with --recursive, their
// closures) and parses what it prints. No shell is involved.
func (n Nix) PathInfo(ctx context.Context, recursive bool, paths ...string) ([]PathInfo, error) {
	command := n.Command
	if command == "" {
		command = "nix"
	}
	storeDir := n.StoreDir
	if storeDir == "" {
		storeDir = DefaultStoreDir
	}
	args := []string{"--extra-experimental-features", "nix-command", "path-info", "--json"}
	if recursive {
		args = append(args, "--recursive")
	}
	if n.Store != "" {
		args = append(args, "--store", n.Store)
	}
	if n.Derivation {
		args = append(args, "--derivation")
	}
	args = append(args, "--")
	args = append(args, paths...)
	cmd := exec.CommandContext(ctx, command, args...)
	cmd.Env = append(os.Environ(), n.Env...)
	stderr := &TailBuffer{Max: 2000}
	cmd.Stderr = stderr
	name := command + " path-info --json"
	if recursive {
		name += " --recursive"
	}
	if n.Store != "" {
		name += " --store " + n.Store
	}
	out, err := CommandOutput(cmd, name, fsutil.MaxPathInfo)
	var big *OutputTooLargeError
	if errors.As(err, &big) {
		return nil, err
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if stderr.Cut() {
			msg = "…" + msg
		}
		return nil, fmt.Errorf("%s: %v: %s", name, err, msg)
	}
	return ParsePathInfo(out, name, storeDir)
}

// OutputTooLargeError says a command printed more on stdout than releng
// reads from it; the command was stopped. It never holds the output.
type OutputTooLargeError struct {
	What  string // the command, for the message
	Limit int64
}

func (e *OutputTooLargeError) Error() string {
	return fmt.Sprintf("%s printed more than %s on stdout, the most releng reads from it; it was stopped", e.What, fsutil.FormatSize(e.Limit))
}

// CommandOutput runs cmd, whose Stdout must be unset, and returns what it
// prints on stdout: at most limit bytes, a command printing more is
// stopped (with its children, which the closed pipe ends) and the error is
// an *OutputTooLargeError naming what. No error holds the output.
func CommandOutput(cmd *exec.Cmd, what string, limit int64) ([]byte, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// A child left holding stderr once the command has exited (or been
	// stopped) does not hold releng up for longer than this.
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = time.Second
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	out, readErr := fsutil.ReadAllLimited(stdout, what, limit)
	if readErr != nil {
		stdout.Close()
		_ = cmd.Process.Kill()
	}
	err = cmd.Wait()
	var big *fsutil.TooLargeError
	if errors.As(readErr, &big) {
		return nil, &OutputTooLargeError{What: what, Limit: limit}
	}
	if readErr != nil {
		return nil, readErr
	}
	return out, err
}

// TailBuffer keeps the last Max bytes written to it (a command's stderr,
// for its error message), however much is written.
type TailBuffer struct {
	Max int
	mu  sync.Mutex
	buf []byte
	cut bool
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.Max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.Max:]...)
		t.cut = true
	}
	return len(p), nil
}

// String returns the bytes kept.
func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Cut reports whether earlier bytes were dropped.
func (t *TailBuffer) Cut() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cut
}
