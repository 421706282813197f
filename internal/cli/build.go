package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/release"
)

func (app *App) buildCommand() *cobra.Command {
	var opts release.BuildOptions
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Evaluate and build the release jobs with Nix and lay out release/artifacts",
		Long: `Evaluate the release jobs ([build] jobs, for --profile), realise them with GC
roots under release/gcroots, and lay out release/artifacts (source tarball,
manifest.nix, copy_jobs contents, checksums, SHA256SUMS), release/manual and
release/build.json. HEAD must be exactly on tag VERSION with a clean tree
(run releng tag first) unless --no-check-git.

With [checks] max_closure_growth, the closure of what manifest.nix names is
compared with that of the latest release published to the default
environment before this version: more growth than allowed fails the build
with the diff; a first release, or an environment that cannot be read, is
a warning (an error with --strict). See docs/closure.md.

EXIT STATUS
  0  built; 1  evaluation or build failed, or the closure grew too much; 2  usage or configuration error`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := app.openProject()
			if err != nil {
				return err
			}
			opts.Run, opts.NixLog = app.run(), app.Err
			rec, err := release.Build(cmd.Context(), p, opts)
			if err != nil {
				return err
			}
			if app.JSON {
				return app.printJSON(rec)
			}
			for _, f := range rec.Files {
				fmt.Fprintf(app.Out, "%s  %10d  %s\n", f.SHA256[:12], f.Size, f.Path)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Profile, "profile", "", "build profile (default: build.default_profile)")
	f.StringVar(&opts.Target, "target", "all", "what to build: all, or manual")
	f.BoolVar(&opts.Strict, "strict", false, "fail when [checks] max_closure_growth cannot be checked (a first release, an environment that cannot be read)")
	f.BoolVar(&opts.NoCheckGit, "no-check-git", false, "build the checkout as it is, without requiring HEAD on the release tag")
	return cmd
}
