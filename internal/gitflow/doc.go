// Package gitflow is releng's git release flow (SPEC §6, §11): the
// preconditions of a release, the tag dance (official-release commit on a
// detached HEAD, annotated tag, `-s ours` merge back, detach onto the tag)
// with a rollback when any step fails, maintenance-branch detection, the
// branch-off of a new major's release branch, and resolving an
// environment's git remote.
//
// Every name that reaches git (tag, branch, remote) is validated first, and
// git runs through internal/gitx (an argv, never a shell). The package
// writes nothing on stdout; progress goes to the io.Writer callers pass.
package gitflow
