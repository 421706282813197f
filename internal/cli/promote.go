package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/release"
)

func (app *App) promoteCommand() *cobra.Command {
	var opts release.PromoteOptions
	cmd := &cobra.Command{
		Use:   "promote --from ENV --to ENV",
		Short: "Copy what one environment published of this version into another (no rebuild)",
		Long: `Copy exactly what environment --from published of the version that
release/build.json records into environment --to: the cache's paths (the
closures of the jobs, read from the source cache's narinfos) with their NARs
byte for byte and their narinfos re-signed with --to's key; the images by
digest (the same manifests and index, blobs mounted or copied); the version
directory, manual and root manifest.nix with their checksums; then the git
branch and tag, as upload pushes them. Nothing is rebuilt and no store path
or artifact file is needed, only release/build.json and the tag.

It plans as upload does (--dry-run prints the plans) and, before sending
anything, checks that --from holds every object of the plans as built and
that --to holds no other bytes under the release's names (--force
overwrites them, naming each). Locked, journaled and resumable like upload;
at the end every object of the plans is read back from --to.

EXIT STATUS
  0  promoted and read back; 1  --from does not hold the release, --to holds
  other bytes, a step failed or a check failed; 2  usage or configuration
  error; 130  interrupted (the message says how to finish)`,
		Args:        noArgs,
		Annotations: map[string]string{stopsCleanly: "yes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.From == "" || opts.To == "" {
				return usageErrorf("promote needs --from ENV and --to ENV")
			}
			p, err := app.openProject()
			if err != nil {
				return err
			}
			opts.Run = app.run()
			rep, err := release.Promote(cmd.Context(), p, opts)
			app.bars.done()
			var ie *release.InterruptedError
			if errors.As(err, &ie) {
				return &exitError{code: exitInterrupted, msg: fmt.Sprintf("%s; run `%s` again to finish (it plans again and sends only what is missing)", ie, app.resumeCommand(cmd, ""))}
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
			if rep.DryRun {
				env, _ := p.Config.Environment(opts.To)
				colour := ""
				if env != nil {
					colour = env.Colour
				}
				app.printPlans(&rep.UploadReport, "promote "+rep.Version+" from "+rep.From, colour)
				return nil
			}
			if perr := app.printUpload(&rep.UploadReport); perr != nil {
				return perr
			}
			if rep.Verify != nil {
				app.printVerify(rep.Verify)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.From, "from", "", "environment to copy from")
	f.StringVar(&opts.To, "to", "", "environment to copy to")
	f.BoolVar(&opts.NoConfirm, "noconfirm", false, "do not ask for the confirmation phrase of --to")
	f.BoolVar(&opts.Force, "force", false, "overwrite other bytes that --to holds under the release's names (each is named)")
	f.BoolVar(&opts.ForcePushTag, "force-push-tag", false, "replace the tag on --to's git remote")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plans and check --from; send nothing")
	f.BoolVar(&opts.AllowInsecureKey, "allow-insecure-key", false, "accept a signing key file that group or others can read")
	return cmd
}
