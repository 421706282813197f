package gitx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode"
)

// RefNameError is a tag, branch or remote name that cannot be given to git
// safely. It is reported before git sees the name.
type RefNameError struct {
	Kind   string // "tag", "branch" or "remote"
	Name   string
	Reason string
}

func (e *RefNameError) Error() string {
	return fmt.Sprintf("%s name %q is not usable: %s", e.Kind, e.Name, e.Reason)
}

// ValidateRefName checks name (a short tag, branch or remote name) without
// running git: not empty, no leading '-' (git would read it as an option),
// no whitespace, control or shell-special characters, and none of the forms
// git-check-ref-format(1) forbids. kind is used in the error.
func ValidateRefName(kind, name string) error {
	bad := func(reason string) error { return &RefNameError{Kind: kind, Name: name, Reason: reason} }
	switch {
	case name == "":
		return bad("it is empty")
	case strings.HasPrefix(name, "-"):
		return bad("it starts with '-', which git would read as an option")
	case len(name) > 200:
		return bad("it is longer than 200 characters")
	case name == "@", name == "HEAD":
		return bad("it is reserved by git")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || unicode.IsSpace(c) {
			return bad("it contains whitespace or a control character")
		}
		if strings.ContainsRune("~^:?*[\\;&|$`'\"<>(){}!#", c) {
			return bad(fmt.Sprintf("it contains %q; use letters, digits, '.', '_', '+', '-' and '/'", c))
		}
	}
	for _, s := range []string{"..", "@{", "//", "/.", "/-"} {
		if strings.Contains(name, s) {
			return bad(fmt.Sprintf("it contains %q", s))
		}
	}
	for _, s := range []string{"/", ".", ".lock"} {
		if strings.HasSuffix(name, s) {
			return bad(fmt.Sprintf("it ends with %q", s))
		}
	}
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, ".") {
		return bad("it starts with '/' or '.'")
	}
	return nil
}

// CheckRefName validates name with ValidateRefName and then asks
// git check-ref-format about the full ref (refs/tags/NAME, refs/heads/NAME
// or refs/remotes/NAME/HEAD), so that whatever git itself refuses is
// refused too.
func CheckRefName(ctx context.Context, kind, name string) error {
	if err := ValidateRefName(kind, name); err != nil {
		return err
	}
	var full string
	switch kind {
	case "tag":
		full = "refs/tags/" + name
	case "branch":
		full = "refs/heads/" + name
	case "remote":
		full = "refs/remotes/" + name + "/HEAD"
	default:
		return fmt.Errorf("CheckRefName: unknown kind %q", kind)
	}
	cmd := exec.CommandContext(ctx, "git", "check-ref-format", full)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &RefNameError{Kind: kind, Name: name, Reason: "git check-ref-format refuses it (see `git help check-ref-format`)"}
		}
		return fmt.Errorf("git check-ref-format: %w", err)
	}
	return nil
}

// RevParse returns the object name rev resolves to, or "" when it does
// not exist. rev must be a full ref name or an object name produced by
// releng, never raw user input.
func (r *Repo) RevParse(ctx context.Context, rev string) (string, error) {
	out, err := r.Output(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev)
	if err != nil {
		var ge *Error
		if errors.As(err, &ge) {
			return "", nil
		}
		return "", err
	}
	return out, nil
}

// Tree returns the tree object of a commit.
func (r *Repo) Tree(ctx context.Context, commit string) (string, error) {
	return r.Output(ctx, "rev-parse", "--verify", "--end-of-options", commit+"^{tree}")
}

// Parents returns the parents of a commit, first parent first.
func (r *Repo) Parents(ctx context.Context, commit string) ([]string, error) {
	out, err := r.Output(ctx, "rev-list", "--parents", "-n", "1", "--end-of-options", commit)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return nil, fmt.Errorf("git rev-list: no such commit %s", commit)
	}
	return f[1:], nil
}

// TagObject returns the object refs/tags/NAME points at (the tag object
// for an annotated tag), or "" when there is no such tag.
func (r *Repo) TagObject(ctx context.Context, tag string) (string, error) {
	return r.RevParse(ctx, "refs/tags/"+tag)
}

// TagsMerged lists the tags whose commits are reachable from rev (a full
// ref or commit).
func (r *Repo) TagsMerged(ctx context.Context, rev string) ([]string, error) {
	out, err := r.Output(ctx, "for-each-ref", "--merged="+rev, "--format=%(refname:strip=2)", "refs/tags/")
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// RefsContaining lists the refs under prefix (e.g. refs/remotes/origin/)
// whose history contains commit.
func (r *Repo) RefsContaining(ctx context.Context, prefix, commit string) ([]string, error) {
	out, err := r.Output(ctx, "for-each-ref", "--contains="+commit, "--format=%(refname)", prefix)
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// RefsUnder lists the refs under prefix.
func (r *Repo) RefsUnder(ctx context.Context, prefix string) ([]string, error) {
	out, err := r.Output(ctx, "for-each-ref", "--format=%(refname)", prefix)
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// Commit commits the given paths (only those, whatever else is staged)
// with message. Hooks run as they would for the user.
func (r *Repo) Commit(ctx context.Context, message string, paths ...string) error {
	args := []string{"commit", "-q", "-m", message, "--"}
	return r.Run(ctx, append(args, paths...)...)
}

// TagAnnotated creates the annotated tag name at HEAD; force replaces an
// existing one. name must have passed CheckRefName.
func (r *Repo) TagAnnotated(ctx context.Context, name, message string, force bool) error {
	args := []string{"tag", "-a", "-m", message}
	if force {
		args = append(args, "-f")
	}
	return r.Run(ctx, append(args, "--", name)...)
}

// UpdateRef points ref (a full ref name) at newValue; when oldValue is not
// "" the update happens only if ref is at oldValue now.
func (r *Repo) UpdateRef(ctx context.Context, ref, newValue, oldValue, reason string) error {
	args := []string{"update-ref", "-m", reason, ref, newValue}
	if oldValue != "" {
		args = append(args, oldValue)
	}
	return r.Run(ctx, args...)
}

// CreateRef creates ref (a full ref name) at value, failing if it exists.
func (r *Repo) CreateRef(ctx context.Context, ref, value, reason string) error {
	return r.Run(ctx, "update-ref", "-m", reason, ref, value, "")
}

// DeleteRef deletes ref (a full ref name).
func (r *Repo) DeleteRef(ctx context.Context, ref, reason string) error {
	return r.Run(ctx, "update-ref", "-m", reason, "-d", ref)
}

// MergeOurs merges rev (a full ref or commit) into the current branch with
// the ours strategy: a merge commit whose tree is the branch's own.
func (r *Repo) MergeOurs(ctx context.Context, rev string, message string) error {
	return r.Run(ctx, "merge", "-q", "--no-ff", "--no-edit", "-s", "ours", "-m", message, "--", rev)
}

// MergeInProgress reports whether a merge was started and not concluded.
func (r *Repo) MergeInProgress(ctx context.Context) bool {
	c, err := r.RevParse(ctx, "MERGE_HEAD")
	return err == nil && c != ""
}

// MergeAbort abandons a merge in progress.
func (r *Repo) MergeAbort(ctx context.Context) error {
	return r.Run(ctx, "merge", "--abort")
}

// SwitchBranch checks out a branch; force throws away local changes.
// branch must have passed CheckRefName.
func (r *Repo) SwitchBranch(ctx context.Context, branch string, force bool) error {
	// checkout needs the short name ("refs/heads/X" would detach), so it
	// is validated here; the trailing "--" makes git read it as a branch,
	// never as a path.
	if err := ValidateRefName("branch", branch); err != nil {
		return err
	}
	args := []string{"checkout", "-q"}
	if force {
		args = append(args, "-f")
	}
	return r.Run(ctx, append(args, branch, "--")...)
}

// Detach detaches HEAD at rev (a full ref or commit).
func (r *Repo) Detach(ctx context.Context, rev string) error {
	return r.Run(ctx, "checkout", "-q", "--detach", rev, "--")
}

// InitBare creates a bare repository at dir (with its parents) unless one
// is there already, and returns whether it created it.
func InitBare(ctx context.Context, dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	r := &Repo{Dir: dir}
	if err := r.Run(ctx, "init", "-q", "--bare", "--", "."); err != nil {
		return false, err
	}
	return true, nil
}
