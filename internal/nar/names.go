package nar

import (
	"fmt"
	"strings"
)

// Limits on what a NAR may contain. Nix ≥ 2.35 and Lix refuse archives that
// exceed them, and most operating systems cannot restore them.
const (
	// MaxDepth is the first nesting level that is refused: the root is at
	// level 0, its entries at level 1, and an entry at level MaxDepth or
	// deeper is an error.
	MaxDepth = 64
	// MaxNameLen is the longest directory entry name, in bytes.
	MaxNameLen = 255
	// MaxTargetLen is the longest symbolic link target, in bytes.
	MaxTargetLen = 4095
)

// caseHackSuffix is what Nix appends on case-insensitive file systems to
// tell apart names that differ only in case; a name containing it would be
// rewritten by such clients, so it is never accepted.
const caseHackSuffix = "~nix~case~hack~"

// ValidateName reports whether name may be a directory entry in a NAR.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty entry name")
	case name == "." || name == "..":
		return fmt.Errorf("entry name %q is not allowed", name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("entry name is %d bytes long (limit %d)", len(name), MaxNameLen)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("entry name %q contains '/'", name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("entry name %q contains a NUL byte", name)
	case strings.Contains(name, caseHackSuffix):
		return fmt.Errorf("entry name %q contains %q", name, caseHackSuffix)
	}
	return nil
}

// ValidateTarget reports whether target may be the target of a symbolic
// link in a NAR.
func ValidateTarget(target string) error {
	switch {
	case target == "":
		return fmt.Errorf("empty symlink target")
	case len(target) > MaxTargetLen:
		return fmt.Errorf("symlink target is %d bytes long (limit %d)", len(target), MaxTargetLen)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("symlink target %q contains a NUL byte", target)
	}
	return nil
}
