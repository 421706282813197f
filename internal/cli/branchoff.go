package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/gitflow"
)

func (app *App) branchOffCommand() *cobra.Command {
	var opts gitflow.BranchOffOptions
	cmd := &cobra.Command{
		Use:   "branch-off",
		Short: "Create the new major's release branch at the release merge and push it",
		Long: `After a new major release (SPEC §11): create [git] release_branch
(release-{major}, e.g. release-2.93) at the commit where releng tag merged
tag VERSION back into its branch, and push it to the environment's git
remote (always as refs/heads/BRANCH, also for Gerrit environments).

Refuses, changing nothing, when tag VERSION or its merge does not exist,
when VERSION is a maintenance release, or when the branch already exists
locally or on the remote. If the push fails, the local branch is deleted
again.

EXIT STATUS
  0  created and pushed
  1  refused, or the push failed
  2  usage or configuration error`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := app.openProject()
			if err != nil {
				return err
			}
			if _, err := p.Config.Environment(opts.Environment); err != nil {
				return err
			}
			opts.Progress = app.Err
			res, err := gitflow.BranchOff(cmd.Context(), p, opts)
			if err != nil {
				return err
			}
			if app.JSON {
				return app.printJSON(res)
			}
			fmt.Fprintf(app.Out, "created %s at %s (the merge of %s into %s)\n", res.Branch, short(res.Commit), res.Version, res.From)
			fmt.Fprintf(app.Out, "pushed it to %s (environment %s)\n", res.Remote.URL, res.Remote.Environment)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Environment, "environment", "", "environment whose git remote gets the branch (default: default_environment)")
	return cmd
}
