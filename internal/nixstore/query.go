package nixstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
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
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	name := command + " path-info --json"
	if recursive {
		name += " --recursive"
	}
	if n.Store != "" {
		name += " --store " + n.Store
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "…" + msg[len(msg)-2000:]
		}
		return nil, fmt.Errorf("%s: %v: %s", name, err, msg)
	}
	return ParsePathInfo(out, name, storeDir)
}
