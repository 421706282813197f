package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/release"
)

func (app *App) demoCommand() *cobra.Command {
	var opts release.DemoOptions
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Release the bundled example project to the local environment, end to end",
		Long: `Copy the embedded example project to DIR (default: a new temp dir, kept and
printed), git init it, and run prepare, tag, build, upload (environment local,
no prompt) and verify; then print what was published. Needs git and Nix.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Run, opts.NixLog = app.run(), app.Err
			rep, err := release.Demo(cmd.Context(), opts)
			app.bars.done()
			if rep != nil && app.JSON {
				if jerr := app.printJSON(rep); jerr != nil {
					return jerr
				}
			} else if rep != nil {
				fmt.Fprintf(app.Out, "Released %s of the example project in %s\n\n", rep.Version, rep.Dir)
				app.printUpload(rep.Upload)
				fmt.Fprintln(app.Out)
				app.printVerify(rep.Verify)
				fmt.Fprintf(app.Out, "\nEverything was published under %s. To look at it:\n", rep.Local)
				for _, l := range rep.Look {
					fmt.Fprintf(app.Out, "\n  # %s\n  %s\n", l.What, l.Command)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "directory for the example project (new or empty)")
	return cmd
}
