package release

import (
	"context"
	"fmt"

	"github.com/releng-project/releng/internal/gitflow"
)

// gitStage pushes the branch, then the tag (step 6).
type gitStage struct{}

func (gitStage) Name() string { return "git" }
func (gitStage) Skip(u *upload) string {
	if u.t.Env.GitRemote == nil && !u.t.Env.BuiltIn {
		return "no git_remote configured"
	}
	return ""
}

func (gitStage) Run(ctx context.Context, u *upload) (Published, error) {
	remote, err := gitflow.ResolveRemote(ctx, u.p, u.t.Env.Name)
	if err != nil {
		return Published{}, err
	}
	pub := Published{Where: remote.URL}
	branch, err := gitflow.PrevBranch(u.p)
	if err != nil {
		return pub, err
	}
	if branch != "" {
		if err := u.p.Git.Push(ctx, remote.URL, []string{"refs/heads/" + branch + ":" + remote.BranchRef(branch)}); err != nil {
			return pub, fmt.Errorf("push branch %s to %s: %w", branch, remote.URL, err)
		}
		pub.Sent++
	} else {
		u.say("git: no branch remembered by `releng tag` (release/state/prev-branch): pushing the tag only")
	}
	if c, err := u.p.Git.TagCommit(ctx, u.rec.Version); err != nil {
		return pub, err
	} else if c == "" {
		return pub, fmt.Errorf("tag %s does not exist in this repository: run `releng tag` (or `git fetch --tags`) first", u.rec.Version)
	}
	tag := "refs/tags/" + u.rec.Version
	var opts []string
	if u.opts.ForcePushTag {
		opts = append(opts, "--force")
	}
	if err := u.p.Git.Push(ctx, remote.URL, []string{tag + ":" + tag}, opts...); err != nil {
		return pub, fmt.Errorf("push tag %s to %s (pass --force-push-tag to replace a different tag there): %w", u.rec.Version, remote.URL, err)
	}
	pub.Sent++
	pub.Objects = pub.Sent
	return pub, nil
}
