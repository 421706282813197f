package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/project"
)

type tagOptions struct {
	forceTag         bool
	noCheckGit       bool
	environment      string
	allowInsecureKey bool
}

func (app *App) tagCommand() *cobra.Command {
	var opts tagOptions
	cmd := &cobra.Command{
		Use:   "tag",
		Short: "Make the official-release commit, tag it, merge it back, detach onto the tag",
		Long: `Tag the release (SPEC §6). On the current branch, with a clean tree:

  1. remember the branch in release/state/prev-branch;
  2. detach HEAD, set official_release to true in the version file (nothing
     else changes), commit 'release: VERSION "RELEASE_NAME"' and make the
     annotated tag VERSION;
  3. switch back to the branch and merge the tag with -s ours: the history
     links to the release, the branch's tree (official_release false) stays;
  4. detach onto the tag, ready for releng build.

The tag is signed (git's gpg.format=ssh) with the release_key of
--environment (default: default_environment) when it has one; the key
file is checked first (mode 0600). Every commit carries [git] commit_trailer. If a step fails (a hook refuses,
git fails), everything done so far is undone and the error says what.

Checks first (skipped by --no-check-git): no staged or modified tracked
files, official_release false, tag VERSION exists neither locally nor on
[git] remote (asked with git ls-remote) unless --force-tag. Never skipped:
the version must be valid and safe as a tag name, and HEAD on a branch.

EXIT STATUS
  0  tagged
  1  a check failed or a step failed (and was rolled back)
  2  usage, configuration or version file error`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.runTag(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.forceTag, "force-tag", false, "replace an existing tag VERSION (move it to the new release commit)")
	f.BoolVar(&opts.noCheckGit, "no-check-git", false, "skip the working tree, official flag and tag-exists checks")
	f.StringVar(&opts.environment, "environment", "", "environment whose release_key signs the tag (default: default_environment)")
	f.BoolVar(&opts.allowInsecureKey, "allow-insecure-key", false, "accept a release key file that group or others can read")
	return cmd
}

func (app *App) runTag(ctx context.Context, opts tagOptions) error {
	p, err := app.openProject()
	if err != nil {
		return err
	}
	res, err := gitflow.Tag(ctx, p, gitflow.TagOptions{
		ForceTag:   opts.forceTag,
		NoCheckGit: opts.noCheckGit,
		Progress:   app.Err,

		Environment:      opts.environment,
		AllowInsecureKey: opts.allowInsecureKey,
	})
	if err != nil {
		return err
	}
	if app.JSON {
		return app.printJSON(res)
	}
	app.printTagResult(ctx, p, res)
	return nil
}

func (app *App) printTagResult(ctx context.Context, p *project.Project, res *gitflow.TagResult) {
	out := app.Out
	verb := "tagged"
	if res.Moved {
		verb = fmt.Sprintf("moved tag (was at %s):", short(res.PreviousTag))
	}
	fmt.Fprintf(out, "%s %s \"%s\"\n", verb, res.Version, res.ReleaseName)
	fmt.Fprintf(out, "  release commit  %s  (official_release = true; tag %s points here)\n", short(res.ReleaseCommit), res.Version)
	fmt.Fprintf(out, "  merge commit    %s  on %s (-s ours: %s's tree is unchanged)\n", short(res.MergeCommit), res.Branch, res.Branch)
	fmt.Fprintf(out, "  HEAD            detached at %s\n", res.Version)
	if res.SignedBy != "" {
		fmt.Fprintf(out, "  signed by       %s (SSH signature: git verify-tag %s)\n", res.SignedBy, res.Version)
	}
	next := [][2]string{
		{"releng build", "build the release artifacts from this tag"},
		{"releng upload", "publish them, with the tag"},
	}
	if m, err := gitflow.DetectMaintenance(ctx, p); err == nil && !m.Maintenance && !p.Version.IsPrerelease() {
		if b, err := gitflow.ReleaseBranch(ctx, p); err == nil && b != res.Branch {
			if c, _ := p.Git.RevParse(ctx, "refs/heads/"+b); c == "" {
				next = append(next, [2]string{"releng branch-off", "if this is a new major release: create " + b + " for its maintenance releases"})
			}
		}
	}
	next = append(next, [2]string{"git switch " + res.Branch, "when done (remembered in release/state/" + gitflow.PrevBranchFile + ")"})
	fmt.Fprintf(out, "next:\n")
	for _, n := range next {
		fmt.Fprintf(out, "  %-20s %s\n", n[0], n[1])
	}
}
