package gitflow

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
)

// BranchOffOptions are the choices of `releng branch-off`.
type BranchOffOptions struct {
	// Environment whose git remote gets the branch ("" for the default).
	Environment string
	// Progress receives one line per step (nil: silent).
	Progress io.Writer
}

// BranchOffResult is what `releng branch-off` did.
type BranchOffResult struct {
	Version string `json:"version"`
	// Branch is the new release branch (release_branch expanded).
	Branch string `json:"branch"`
	// From is the branch whose merge commit the new branch starts at.
	From string `json:"from"`
	// Commit is the merge commit of the release tag into From.
	Commit string  `json:"commit"`
	Remote *Remote `json:"remote"`
}

// BranchOffError is a refusal of branch-off: nothing was changed.
type BranchOffError struct {
	Msg string
	Fix string
}

func (e *BranchOffError) Error() string {
	if e.Fix == "" {
		return "cannot branch off: " + e.Msg
	}
	return "cannot branch off: " + e.Msg + "\n  fix: " + e.Fix
}

// ReleaseBranch returns release_branch expanded for the project's version
// (release-{major} → release-2.93), checked as a branch name.
func ReleaseBranch(ctx context.Context, p *project.Project) (string, error) {
	name, err := config.Expand(p.Config.Git.ReleaseBranch, p.Vars())
	if err != nil {
		return "", &config.Error{File: p.Config.Path, Msg: "[git] release_branch: " + err.Error()}
	}
	if err := gitx.CheckRefName(ctx, "branch", name); err != nil {
		return "", &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("[git] release_branch %q gives %v", p.Config.Git.ReleaseBranch, err)}
	}
	return name, nil
}

// BranchOff creates release_branch at the merge of the release tag into
// the branch `releng tag` started from (SPEC §11) and pushes it to the
// environment's git remote (always to refs/heads/BRANCH, also for Gerrit:
// a branch cannot be created through a review). It refuses, changing
// nothing, when the tag or its merge is missing, the release is a
// maintenance release, or the branch exists locally or on the remote. If
// the push fails, the local branch it created is deleted again.
func BranchOff(ctx context.Context, p *project.Project, opts BranchOffOptions) (*BranchOffResult, error) {
	vf := p.Version
	if err := ValidateVersion(ctx, vf); err != nil {
		return nil, err
	}
	v := vf.Version
	branch, err := ReleaseBranch(ctx, p)
	if err != nil {
		return nil, err
	}
	res := &BranchOffResult{Version: v, Branch: branch}
	repo := p.Git
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", args...)
		}
	}

	tagCommit, err := repo.TagCommit(ctx, v)
	if err != nil {
		return nil, err
	}
	if tagCommit == "" {
		return nil, &BranchOffError{Msg: fmt.Sprintf("tag %s does not exist in this checkout", v),
			Fix: "run `releng tag` first (or `git fetch --tags` if it was made elsewhere)"}
	}
	from, err := PrevBranch(p)
	if err != nil {
		return nil, err
	}
	if from == "" {
		if from, err = mainBranch(ctx, p); err != nil {
			return nil, err
		}
	}
	if err := gitx.CheckRefName(ctx, "branch", from); err != nil {
		return nil, err
	}
	res.From = from
	m, err := DetectMaintenance(ctx, p)
	if err != nil {
		return nil, err
	}
	if m.Maintenance {
		return nil, &BranchOffError{Msg: fmt.Sprintf("%s is a maintenance release (%s has the newer %s)", v, m.MainRef, m.NewestOnMain),
			Fix: "branch-off is for a new major release; maintenance branches already exist"}
	}
	if from == branch {
		return nil, &BranchOffError{Msg: fmt.Sprintf("%s was released from %s itself", v, branch),
			Fix: "branch-off is for a new major release made on " + p.Config.Git.MainBranch}
	}
	if res.Commit, err = findMerge(ctx, repo, from, tagCommit); err != nil {
		return nil, err
	}
	if res.Commit == "" {
		return nil, &BranchOffError{Msg: fmt.Sprintf("branch %s has no merge of tag %s", from, v),
			Fix: fmt.Sprintf("run `releng tag` from %s (it makes the merge), or `git fetch` if %s is behind", from, from)}
	}
	if c, err := repo.RevParse(ctx, "refs/heads/"+branch); err != nil {
		return nil, err
	} else if c != "" {
		return nil, &BranchOffError{Msg: fmt.Sprintf("branch %s already exists locally (at %s)", branch, short(c)),
			Fix: fmt.Sprintf("nothing to do if it is right; otherwise delete it with `git branch -D %s` and run branch-off again", branch)}
	}
	remote, err := ResolveRemote(ctx, p, opts.Environment)
	if err != nil {
		return nil, err
	}
	res.Remote = remote
	refs, err := repo.LsRemote(ctx, remote.URL, "refs/heads/"+branch)
	if err != nil {
		return nil, fmt.Errorf("ask %s (environment %s) whether %s exists: %w\n  fix: check the network and your credentials for that remote", remote.URL, remote.Environment, branch, err)
	}
	if c := refs["refs/heads/"+branch]; c != "" {
		return nil, &BranchOffError{Msg: fmt.Sprintf("branch %s already exists on %s (at %s)", branch, remote.URL, short(c)),
			Fix: fmt.Sprintf("fetch it with `git fetch %s %s:%s` instead of branching off again", remote.URL, branch, branch)}
	}

	if err := repo.CreateRef(ctx, "refs/heads/"+branch, res.Commit, "releng branch-off "+v); err != nil {
		return nil, err
	}
	progress("created branch %s at %s (the merge of %s into %s)", branch, short(res.Commit), v, from)
	// The lease with an empty value makes the push fail if the branch
	// appeared on the remote meanwhile.
	lease := "--force-with-lease=refs/heads/" + branch + ":"
	if err := repo.Push(ctx, remote.URL, []string{"refs/heads/" + branch + ":refs/heads/" + branch}, lease); err != nil {
		msg := fmt.Sprintf("push %s to %s (environment %s): %v", branch, remote.URL, remote.Environment, err)
		if derr := repo.DeleteRef(ctx, "refs/heads/"+branch, "releng branch-off: roll back"); derr != nil {
			return nil, fmt.Errorf("%s\nthe local branch %s could not be deleted either (%v): delete it with `git branch -D %s`", msg, branch, derr, branch)
		}
		return nil, fmt.Errorf("%s\nrolled back: deleted the local branch %s; fix the push problem and run branch-off again", msg, branch)
	}
	progress("pushed %s to %s", branch, remote.URL)
	return res, nil
}

// findMerge returns the commit on branch that merges tagCommit as its
// second parent (the `-s ours` merge of releng tag), "" if there is none.
func findMerge(ctx context.Context, repo *gitx.Repo, branch, tagCommit string) (string, error) {
	out, err := repo.Output(ctx, "rev-list", "--merges", "--parents", "refs/heads/"+branch, "^"+tagCommit, "--")
	if err != nil {
		return "", err
	}
	found := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == tagCommit {
			found = f[0] // rev-list lists newest first: keep the oldest
		}
	}
	return found, nil
}
