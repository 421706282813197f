//go:build !unix

package dir

import "os"

// lockFile cannot lock here: a writer's file is never reported held, and
// Leftovers finds none (see leftovers.go).
func lockFile(f *os.File, wait bool) error { return errNoLocks }
