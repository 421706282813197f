package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/notes"
)

func (app *App) prepareCommand() *cobra.Command {
	var opts notes.PrepareOptions
	cmd := &cobra.Command{
		Use:   "prepare [--date YYYY-MM-DD]",
		Short: "Gather the release-note fragments into the release's notes file and commit",
		Long: `Prepare the release notes (SPEC §4.4), with date D (today, or --date):

  1. if the notes file of MAJOR ([notes] output) does not exist yet, link it
     from the summary ([notes] summary) after the marker line;
  2. render the fragments (as notes render does);
  3. write the notes file: the major header (kept when the file already
     starts with it, for a point release), "# TITLE VERSION (D)", the
     rendered notes, then what the file held before;
  4. git add the notes file and summary, git rm the fragments (not .gitkeep
     or other files), and commit "release: release notes for VERSION" with
     [git] commit_trailer.

Nothing is written when the working tree has changes to tracked files, when
a fragment is not tracked by git, or when notes check finds an error (the
problems are printed as path:line: message). With no fragments it warns and
writes the version header alone. Files are written atomically; if git fails,
the files and index are put back.

EXIT STATUS
  0  prepared and committed
  1  refused (dirty tree, fragment problems, already prepared) or git failed
  2  usage, configuration or version file error`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Date != "" {
				if err := notes.ValidDate(opts.Date); err != nil {
					return usageErrorf("--date: %v", err)
				}
			}
			p, err := app.openProject()
			if err != nil {
				return err
			}
			res, err := notes.Prepare(cmd.Context(), p, opts)
			var pe *notes.ProblemsError
			if errors.As(err, &pe) {
				for _, pr := range pe.Report.Problems {
					fmt.Fprintln(app.Err, pr)
				}
				return &exitError{code: 1, msg: fmt.Sprintf("prepare: %s in the release-note fragments; nothing was written (fix them, see releng notes check)", countProblems(pe.Report))}
			}
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(app.Err, w)
			}
			if app.JSON {
				return app.printJSON(res)
			}
			fmt.Fprintf(app.Out, "wrote %s\n", res.Output)
			if res.Summary != "" {
				fmt.Fprintf(app.Out, "linked it from %s\n", res.Summary)
			}
			fmt.Fprintf(app.Out, "removed %d %s\n", len(res.Removed), plural(len(res.Removed), "fragment", "fragments"))
			fmt.Fprintf(app.Out, "committed %s: release: release notes for %s\n", short(res.Commit), res.Version)
			fmt.Fprintln(app.Out, "next: releng tag")
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Date, "date", "", "release date `YYYY-MM-DD` (default: today)")
	return cmd
}
