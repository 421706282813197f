package gitflow

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
)

// Remote is an environment's git remote, resolved (SPEC §3.5 git_remote).
type Remote struct {
	// Environment is the environment's name.
	Environment string `json:"environment"`
	// URL is what git is given: a URL, or an absolute path.
	URL string `json:"url"`
	// Gerrit is set when branches go to refs/for/BRANCH for review.
	Gerrit bool `json:"gerrit"`
	// GuessedFrom is the remote name whose URL matched a
	// `{ guess = "REGEX" }`, "" otherwise.
	GuessedFrom string `json:"guessed_from,omitempty"`
	// Created is set when the built-in local environment's bare
	// repository was created by this call.
	Created bool `json:"created,omitempty"`
}

// BranchRef is the ref a release branch is pushed to: refs/for/BRANCH
// for Gerrit (a review), refs/heads/BRANCH otherwise.
func (r *Remote) BranchRef(branch string) string {
	if r.Gerrit {
		return "refs/for/" + branch
	}
	return "refs/heads/" + branch
}

// LocalGitDir is the bare repository of the built-in local environment.
func LocalGitDir(p *project.Project) string {
	return filepath.Join(p.ReleaseDir(), config.LocalDir, "git")
}

var scpLike = regexp.MustCompile(`^[^/:]+:`)

// isURL tells a URL (scheme://… or scp-like host:path) from a local path.
func isURL(s string) bool {
	return strings.Contains(s, "://") || (scpLike.MatchString(s) && !filepath.IsAbs(s))
}

// ResolveRemote returns the git remote of environment env ("" for the
// default environment): a configured URL or path (a relative path is
// relative to the project root), the first `git remote -v` URL matching a
// `{ guess = "REGEX" }`, or, for the built-in local environment, the bare
// repository release/local/git, created on first use. Configuration
// problems are *config.Error (exit 2).
func ResolveRemote(ctx context.Context, p *project.Project, env string) (*Remote, error) {
	e, err := p.Config.Environment(env)
	if err != nil {
		return nil, err
	}
	cfgErr := func(format string, args ...any) error {
		return &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("[environments.%s] git_remote: ", e.Name) + fmt.Sprintf(format, args...)}
	}
	r := &Remote{Environment: e.Name, Gerrit: e.Gerrit}
	switch {
	case e.BuiltIn:
		r.URL = LocalGitDir(p)
		if err := ExcludeReleaseDir(ctx, p); err != nil {
			return nil, err
		}
		created, err := gitx.InitBare(ctx, r.URL)
		if err != nil {
			return nil, fmt.Errorf("create the local environment's git repository %s: %w", r.URL, err)
		}
		r.Created = created
	case e.GitRemoteGuess() != "":
		re, err := regexp.Compile(e.GitRemoteGuess())
		if err != nil {
			return nil, cfgErr("guess %q is not a valid regular expression: %v", e.GitRemoteGuess(), err)
		}
		remotes, err := p.Git.Remotes(ctx)
		if err != nil {
			return nil, err
		}
		var seen []string
		for _, rm := range remotes {
			if re.MatchString(rm.URL) {
				r.URL, r.GuessedFrom = rm.URL, rm.Name
				break
			}
			seen = append(seen, rm.Name+" "+rm.URL)
		}
		if r.URL == "" {
			have := "no remotes are configured"
			if len(seen) > 0 {
				have = "the remotes are: " + strings.Join(dedup(seen), ", ")
			}
			return nil, cfgErr("no `git remote -v` URL matches guess %q (%s); add the remote with `git remote add NAME URL`, or set git_remote to a URL", e.GitRemoteGuess(), have)
		}
	case e.GitRemoteURL() != "":
		r.URL = e.GitRemoteURL()
		if err := gitx.ValidateURL(r.URL); err != nil {
			return nil, cfgErr("%v", err)
		}
		if !isURL(r.URL) {
			r.URL = p.Config.Abs(r.URL)
		}
	case e.GitRemote != nil:
		return nil, cfgErr("must be a URL or path string, or { guess = \"REGEX\" }")
	default:
		return nil, cfgErr("not set; add git_remote = \"URL or path\" (or { guess = \"REGEX\" }) under [environments.%s]", e.Name)
	}
	if err := gitx.ValidateURL(r.URL); err != nil {
		return nil, cfgErr("%v", err)
	}
	return r, nil
}

func dedup(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// RemoteTagInfo is what local refs say about tag VERSION on [git].remote.
type RemoteTagInfo struct {
	// Remote is [git].remote.
	Remote string `json:"remote"`
	// Fetched is set when the remote has remote-tracking refs here.
	Fetched bool `json:"fetched"`
	// Present is set when the tag's commit is in the history of one of
	// them, i.e. the remote had it at the last fetch.
	Present bool `json:"present"`
}

// TagOnRemoteLocally answers "is tag VERSION on the remote?" without
// contacting it (for `releng status`, SPEC §2): from the remote-tracking
// refs refs/remotes/REMOTE/*, as of the last `git fetch`. `releng tag`
// asks the remote itself (git ls-remote) instead.
func TagOnRemoteLocally(ctx context.Context, p *project.Project, tagCommit string) (*RemoteTagInfo, error) {
	remote, err := remoteName(ctx, p)
	if err != nil {
		return nil, err
	}
	info := &RemoteTagInfo{Remote: remote}
	prefix := "refs/remotes/" + remote + "/"
	refs, err := p.Git.RefsUnder(ctx, prefix)
	if err != nil {
		return nil, err
	}
	info.Fetched = len(refs) > 0
	if !info.Fetched || tagCommit == "" {
		return info, nil
	}
	containing, err := p.Git.RefsContaining(ctx, prefix, tagCommit)
	if err != nil {
		return nil, err
	}
	info.Present = len(containing) > 0
	return info, nil
}
