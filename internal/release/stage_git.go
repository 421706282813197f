package release

import (
	"context"
	"fmt"

	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/plan"
)

// gitStage pushes the branch, then the tag (step 6).
type gitStage struct{}

func (gitStage) Name() string { return "git" }

// gitState is what the git stage needs to run its plan.
type gitState struct {
	remote *gitflow.Remote
}

// Plan asks the remote (git ls-remote) where the branch and the tag are.
func (gitStage) Plan(ctx context.Context, r *run) (*plan.Plan, error) {
	if r.t.Env.GitRemote == nil && !r.t.Env.BuiltIn {
		return &plan.Plan{Skipped: "no git_remote configured"}, nil
	}
	remote, err := gitflow.ResolveRemote(ctx, r.p, r.t.Env.Name)
	if err != nil {
		return nil, err
	}
	pl := &plan.Plan{Dest: remote.URL, State: &gitState{remote: remote}}
	tagObj, err := r.p.Git.RevParse(ctx, "refs/tags/"+r.rec.Version)
	if err != nil || tagObj == "" {
		return nil, fmt.Errorf("tag %s does not exist in this repository: run `releng tag` (or `git fetch --tags`) first", r.rec.Version)
	}
	if err := r.checkLocalTag(ctx, tagObj); err != nil {
		return nil, err
	}
	branch, err := gitflow.PrevBranch(r.p)
	if err != nil {
		return nil, err
	}
	var wants []plan.Object
	if branch != "" {
		commit, err := r.p.Git.RevParse(ctx, "refs/heads/"+branch)
		if err != nil {
			return nil, err
		}
		wants = append(wants, plan.Object{Dest: remote.URL, Key: remote.BranchRef(branch), Kind: plan.KindRef, Digest: commit, Source: "refs/heads/" + branch})
	} else {
		pl.Note = "no branch remembered by `releng tag` (release/state/prev-branch): the tag only"
	}
	tag := "refs/tags/" + r.rec.Version
	wants = append(wants, plan.Object{Dest: remote.URL, Key: tag, Kind: plan.KindRef, Digest: tagObj, Source: tag})
	var keys []string
	for _, w := range wants {
		keys = append(keys, w.Key)
	}
	have, err := r.p.Git.LsRemote(ctx, remote.URL, keys...)
	if err != nil {
		return nil, err
	}
	for _, w := range wants {
		switch got := have[w.Key]; {
		case remote.Gerrit && w.Source != tag:
			w.Why, w.Detail = plan.New, "a Gerrit review ref: pushed every time, it cannot be read back"
		case got == "":
			w.Why = plan.New
		case got == w.Digest:
			w.Why = plan.Present
		default:
			w.Why, w.Detail = plan.Changed, "the remote has "+short(got)
		}
		pl.Add(w)
	}
	return pl, nil
}

// Run pushes the branch, then the tag (--force-push-tag replaces a
// different tag on the remote).
func (gitStage) Run(ctx context.Context, r *run, pl *plan.Plan) (Published, error) {
	st := pl.State.(*gitState)
	var pub Published
	for _, o := range pl.Objects {
		pub.Objects++
		if !o.Sends() {
			continue
		}
		var opts []string
		isTag := o.Key == "refs/tags/"+r.rec.Version
		if isTag && r.opts.ForcePushTag {
			opts = append(opts, "--force")
		}
		if err := r.p.Git.Push(ctx, st.remote.URL, []string{o.Source + ":" + o.Key}, opts...); err != nil {
			if isTag {
				return pub, fmt.Errorf("push tag %s to %s (pass --force-push-tag to replace a different tag there): %w", r.rec.Version, st.remote.URL, err)
			}
			return pub, fmt.Errorf("push %s to %s: %w", o.Source, st.remote.URL, err)
		}
		pub.Sent++
	}
	return pub, nil
}

// Verify asks the remote again: each ref must be where the plan puts it,
// and the tag must name the release commit.
func (gitStage) Verify(ctx context.Context, r *run, pl *plan.Plan) []Check {
	st := pl.State.(*gitState)
	var keys []string
	for _, o := range pl.Objects {
		keys = append(keys, o.Key, o.Key+"^{}")
	}
	have, err := r.p.Git.LsRemote(ctx, st.remote.URL, keys...)
	var checks []Check
	for _, o := range pl.Objects {
		c := Check{What: "git", Object: o.Key + " on " + st.remote.URL}
		switch {
		case err != nil:
			c.Detail = err.Error()
		case st.remote.Gerrit && o.Key != "refs/tags/"+r.rec.Version:
			c.OK, c.Detail = true, "a Gerrit review ref cannot be read back"
		case have[o.Key] == "":
			c.Detail = "the remote has no such ref"
		case have[o.Key] != o.Digest:
			c.Detail = fmt.Sprintf("points at %s, the release has %s", short(have[o.Key]), short(o.Digest))
		case o.Key == "refs/tags/"+r.rec.Version && have[o.Key+"^{}"] != "" && have[o.Key+"^{}"] != r.rec.Commit:
			c.Detail = fmt.Sprintf("the tag names %s, the release commit is %s", short(have[o.Key+"^{}"]), short(r.rec.Commit))
		default:
			c.OK = true
		}
		checks = append(checks, c)
		if o.Key == "refs/tags/"+r.rec.Version && r.keys.pub != nil && have[o.Key] != "" {
			checks = append(checks, r.checkRemoteTag(ctx, st.remote.URL, have[o.Key]))
		}
	}
	return checks
}
