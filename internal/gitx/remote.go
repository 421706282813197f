package gitx

import (
	"context"
	"fmt"
	"strings"
)

// Remote is one line of `git remote -v`.
type Remote struct {
	Name string
	URL  string
	// Direction is "fetch" or "push".
	Direction string
}

// Remotes lists the configured remotes as `git remote -v` shows them.
func (r *Repo) Remotes(ctx context.Context) ([]Remote, error) {
	out, err := r.Output(ctx, "remote", "-v")
	if err != nil || out == "" {
		return nil, err
	}
	var rs []Remote
	for _, line := range strings.Split(out, "\n") {
		// "origin\tURL (fetch)"; the URL itself may contain spaces.
		name, rest, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		dir := ""
		if i := strings.LastIndex(rest, " ("); i >= 0 && strings.HasSuffix(rest, ")") {
			dir = rest[i+2 : len(rest)-1]
			rest = rest[:i]
		}
		rs = append(rs, Remote{Name: name, URL: rest, Direction: dir})
	}
	return rs, nil
}

// HasRemote reports whether a remote called name is configured.
func (r *Repo) HasRemote(ctx context.Context, name string) (bool, error) {
	out, err := r.Output(ctx, "remote")
	if err != nil {
		return false, err
	}
	for _, n := range strings.Split(out, "\n") {
		if n == name {
			return true, nil
		}
	}
	return false, nil
}

// ValidateURL checks a remote URL or path before it is given to git: not
// empty, no leading '-' (git would read `--upload-pack=…` as an option),
// no control characters, and none of the transports that run commands
// (ext::, fd::).
func ValidateURL(u string) error {
	bad := func(reason string) error { return fmt.Errorf("git remote %q is not usable: %s", u, reason) }
	switch {
	case strings.TrimSpace(u) == "":
		return bad("it is empty")
	case strings.HasPrefix(u, "-"):
		return bad("it starts with '-', which git would read as an option; write a URL (ssh://…, https://…) or a path (./dir)")
	case strings.HasPrefix(strings.ToLower(u), "ext::"), strings.HasPrefix(strings.ToLower(u), "fd::"):
		return bad("the ext:: and fd:: transports run commands; use ssh://, https:// or a path")
	}
	for _, c := range u {
		if c < 0x20 || c == 0x7f {
			return bad("it contains a control character")
		}
	}
	return nil
}

// LsRemote asks remote (a remote name, URL or path that passed
// ValidateURL) for the given full refs and returns ref → object. A ref the
// remote does not have is absent from the map; an unreachable remote is an
// error.
func (r *Repo) LsRemote(ctx context.Context, remote string, refs ...string) (map[string]string, error) {
	if err := ValidateURL(remote); err != nil {
		return nil, err
	}
	out, err := r.Output(ctx, append([]string{"ls-remote", "--", remote}, refs...)...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		obj, ref, ok := strings.Cut(line, "\t")
		if ok {
			m[ref] = obj
		}
	}
	return m, nil
}

// Push pushes refspecs to remote (a remote name, URL or path that passed
// ValidateURL); options go before the remote, e.g. --force-with-lease=….
func (r *Repo) Push(ctx context.Context, remote string, refspecs []string, options ...string) error {
	if err := ValidateURL(remote); err != nil {
		return err
	}
	args := append([]string{"push", "--porcelain"}, options...)
	args = append(args, "--", remote)
	return r.Run(ctx, append(args, refspecs...)...)
}
