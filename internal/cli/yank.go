package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/release"
	"github.com/releng-project/releng/internal/runctx"
)

func (app *App) yankCommand() *cobra.Command {
	var opts release.YankOptions
	cmd := &cobra.Command{
		Use:   "yank VERSION --environment E --reason TEXT [--undo]",
		Short: "Withdraw a published release without deleting it (or --undo that)",
		Long: `Withdraw VERSION from environment E without deleting what users may have
pinned (SPEC §11.2). yank writes yanked.json (version, reason, time, the
moves it makes; signed like SHA256SUMS when E has a release_key) into the
version directory, then points what names VERSION back at the newest
published, non-yanked stable release: the root manifest.nix (after checking
that release's closure is in the cache), the moving image tags (latest; the
major's tag within its major) and the stable manual. The cache, the version
directory and VERSION's own image tag stay.

--undo moves back what yanked.json records (pointers moved on since are left
alone), then removes yanked.json. Both plan first (--dry-run prints exactly
what moves), ask E's confirmation phrase, hold E's lock and journal what
they do; a run cut short is finished by running it again. See docs/yank.md.

EXIT STATUS
  0  done (or nothing to do); 1  VERSION is not published, not yanked (--undo),
  the only stable release, or a step failed; 2  usage or configuration error`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("%s takes one VERSION, got %q (see `%s --help`)", cmd.CommandPath(), args, cmd.CommandPath())
			}
			return nil
		},
		Annotations: map[string]string{stopsCleanly: "yes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Version = args[0]
			p, err := app.openProject()
			if err != nil {
				return err
			}
			opts.Run = app.run()
			rep, err := release.Yank(cmd.Context(), p, opts)
			if errors.Is(err, runctx.ErrInterrupted) {
				return &exitError{code: exitInterrupted, msg: fmt.Sprintf("yank interrupted; run `%s` again to finish", app.resumeCommand(cmd, ""))}
			}
			if rep == nil {
				return err
			}
			if app.JSON {
				if jerr := app.printJSON(rep); jerr != nil {
					return jerr
				}
				return err
			}
			what := "yank " + rep.Version
			if rep.Undo {
				what = "undo the yank of " + rep.Version
			}
			app.printPlans(&release.UploadReport{Environment: rep.Environment, Version: rep.Version, Plans: rep.Plans}, what, "")
			for _, n := range rep.Notes {
				fmt.Fprintf(app.Out, "note: %s\n", n)
			}
			if !rep.DryRun && err == nil {
				if perr := app.printUpload(&release.UploadReport{Steps: rep.Steps}); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Environment, "environment", "", "environment to withdraw VERSION from (default: default_environment)")
	f.StringVar(&opts.Reason, "reason", "", "why VERSION is withdrawn (written into yanked.json)")
	f.BoolVar(&opts.Undo, "undo", false, "restore what a yank moved and remove yanked.json")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print what would move and change nothing")
	f.BoolVar(&opts.NoConfirm, "noconfirm", false, "do not ask for the confirmation phrase")
	f.BoolVar(&opts.AllowInsecureKey, "allow-insecure-key", false, "accept a release key file that group or others can read")
	return cmd
}
