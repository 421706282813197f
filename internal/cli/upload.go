package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/releng-project/releng/internal/release"
)

func (app *App) uploadCommand() *cobra.Command {
	var opts release.UploadOptions
	cmd := &cobra.Command{
		Use:   "upload",
		Short: "Publish the built release to an environment (cache, images, buckets, git)",
		Long: `Publish release/ (as recorded in release/build.json) to an environment, in
the order of SPEC §10.2: the binary cache, container images, the version
directory to the releases bucket, the manual to the docs bucket, the root
manifest.nix, then the git branch and tag. Every stage first plans: it asks
the destination what it holds and lists what it will send (new, changed),
what is already there and what it deletes; --dry-run prints the plans and
sends nothing. The plans are executed in order and journaled
(release/state/ENV.journal): a re-run plans again, so it sends exactly what is
missing or different, and an interrupted multipart upload resumes. A second
run for the same environment waits for nobody: it refuses and says who holds
the lock.

Ctrl-C (or SIGTERM) stops cleanly: no new object is started, the ones in
flight are sent, the journal is consistent, and the message names the
command that finishes the upload; a second Ctrl-C aborts at once (what
was published stays consistent either way: see docs/upload.md).

EXIT STATUS
  0  published; 1  a step failed (the message says what was published); 2  usage or configuration error;
  130  interrupted (the message says how to finish)`,
		Args:        noArgs,
		Annotations: map[string]string{stopsCleanly: "yes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := app.openProject()
			if err != nil {
				return err
			}
			opts.Run = app.run()
			rep, err := release.Upload(cmd.Context(), p, opts)
			app.bars.done()
			var ie *release.InterruptedError
			if errors.As(err, &ie) {
				return &exitError{code: exitInterrupted, msg: fmt.Sprintf("%s; run `%s` again to finish (it plans again and sends only what is missing)", ie, app.resumeCommand(cmd, ie.Env))}
			}
			if err != nil {
				return err
			}
			if app.JSON {
				return app.printJSON(rep)
			}
			if rep.DryRun {
				env, _ := p.Config.Environment(opts.Environment)
				colour := ""
				if env != nil {
					colour = env.Colour
				}
				app.printPlans(rep, "publish "+rep.Version, colour)
				return nil
			}
			return app.printUpload(rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Environment, "environment", "", "environment to publish to (default: default_environment)")
	f.StringVar(&opts.Target, "target", "all", "what to publish: all, or manual (the docs bucket only)")
	f.BoolVar(&opts.NoConfirm, "noconfirm", false, "do not ask for the confirmation phrase")
	f.BoolVar(&opts.ForcePushTag, "force-push-tag", false, "replace the tag on the git remote")
	f.BoolVar(&opts.NoCheckGit, "no-check-git", false, "do not require HEAD on the release tag")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plans (what each stage would send) and send nothing")
	f.BoolVar(&opts.AllowInsecureKey, "allow-insecure-key", false, "accept a signing key file that group or others can read")
	f.BoolVar(&opts.Unyank, "unyank", false, "publish a version yanked from the environment again, removing its yanked.json")
	return cmd
}

// resumeCommand is the command line that finishes an interrupted run of
// cmd: the same flags, with the environment named (env "": as given).
func (app *App) resumeCommand(cmd *cobra.Command, env string) string {
	args := []string{cmd.CommandPath()}
	if app.Dir != "" {
		args = append(args, "-C", shellQuote(app.Dir))
	}
	if app.ConfigFile != "" {
		args = append(args, "--config", shellQuote(app.ConfigFile))
	}
	if env != "" {
		args = append(args, "--environment", shellQuote(env))
	}
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		switch {
		case !f.Changed || f.Name == "environment":
		case f.Value.Type() == "bool":
			args = append(args, "--"+f.Name)
		default:
			args = append(args, "--"+f.Name, shellQuote(f.Value.String()))
		}
	})
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (app *App) printUpload(rep *release.UploadReport) error {
	w := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "step\twhere\tobjects\tsent\tbytes\n")
	for _, s := range rep.Steps {
		if s.Skipped != "" {
			fmt.Fprintf(w, "%s\t%s\t-\t-\tskipped: %s\n", s.Step, s.Where, s.Skipped)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", s.Step, s.Where, s.Objects, s.Sent, s.Bytes)
	}
	return w.Flush()
}

func (app *App) verifyCommand() *cobra.Command {
	var opts release.VerifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Read back what was published to an environment and check it",
		Long: `Make the same plans as upload and read back every object of them: every
file against release/build.json; for every store path the cache stage
publishes, the narinfo (signed with the environment's public keys), the NAR's
hash and size and the .ls listing; every image blob, manifest and tag; the
branch and tag on the git remote. Needs no secret key.

EXIT STATUS
  0  everything matches; 1  a mismatch (the table says which); 2  usage or configuration error`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := app.openProject()
			if err != nil {
				return err
			}
			opts.Run = app.run()
			rep, err := release.Verify(cmd.Context(), p, opts)
			if err != nil {
				return err
			}
			if app.JSON {
				if err := app.printJSON(rep); err != nil {
					return err
				}
			} else {
				app.printVerify(rep)
			}
			if rep.Failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("verify: %d of %d checks failed", rep.Failed, len(rep.Checks))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Environment, "environment", "", "environment to verify (default: default_environment)")
	return cmd
}

func (app *App) printVerify(rep *release.VerifyReport) {
	w := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "result\twhat\tobject\tdetail\n")
	for _, c := range rep.Checks {
		res := "ok"
		if !c.OK {
			res = "FAIL"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", res, c.What, c.Object, c.Detail)
	}
	w.Flush()
	fmt.Fprintf(app.Out, "%d checks, %d failed\n", len(rep.Checks), rep.Failed)
}
