package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/status"
)

func (app *App) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the release's version, git state, artifacts and what each environment has",
		Long: `Show the version, major, official flag and release name, the git state
(branch, detached, on the release tag), and per environment what is known
locally. status reads local state only: it never contacts a server or runs
credentials_command.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := app.openProject()
			if err != nil {
				return err
			}
			st, err := status.Collect(cmd.Context(), p)
			if err != nil {
				return err
			}
			if app.JSON {
				return app.printJSON(st)
			}
			return app.printStatus(st)
		},
	}
}

func (app *App) printStatus(st *status.Status) error {
	w := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "project\t%s\n", st.Name)
	fmt.Fprintf(w, "version\t%s (major %s)\n", st.Version, st.Major)
	fmt.Fprintf(w, "release name\t%s\n", st.ReleaseName)
	fmt.Fprintf(w, "official release\t%v\n", st.OfficialRelease)
	fmt.Fprintf(w, "pre-release\t%v\n", st.Prerelease)
	g := st.Git
	switch {
	case g.Branch != "":
		fmt.Fprintf(w, "git\ton branch %s at %s\n", g.Branch, short(g.Head))
	case g.OnTag:
		fmt.Fprintf(w, "git\tdetached on tag %s at %s\n", st.Version, short(g.Head))
	default:
		fmt.Fprintf(w, "git\tdetached at %s\n", short(g.Head))
	}
	if g.Clean {
		fmt.Fprintf(w, "tree\tclean\n")
	} else {
		fmt.Fprintf(w, "tree\tdirty (%d changed tracked files)\n", g.Changed)
	}
	if g.TagCommit != "" {
		fmt.Fprintf(w, "tag %s\tpresent locally at %s\n", st.Version, short(g.TagCommit))
	} else {
		fmt.Fprintf(w, "tag %s\tnot created yet\n", st.Version)
	}
	switch {
	case !g.RemoteFetched:
		fmt.Fprintf(w, "tag on %s\tunknown (no remote-tracking refs; run `git fetch %s`)\n", g.Remote, g.Remote)
	case g.TagOnRemote:
		fmt.Fprintf(w, "tag on %s\tpresent (as of the last fetch)\n", g.Remote)
	default:
		fmt.Fprintf(w, "tag on %s\tnot seen (as of the last fetch)\n", g.Remote)
	}
	switch {
	case g.MainRef == "":
		fmt.Fprintf(w, "maintenance\tno (%s's main branch was never fetched: nothing to compare with)\n", g.Remote)
	case g.Maintenance:
		fmt.Fprintf(w, "maintenance\tyes: %s has the newer %s (no latest tag, stable alias or root manifest.nix)\n", strings.TrimPrefix(g.MainRef, "refs/remotes/"), g.NewestOnMain)
	default:
		fmt.Fprintf(w, "maintenance\tno\n")
	}
	if g.PrevBranch != "" {
		fmt.Fprintf(w, "tagged from\t%s\n", g.PrevBranch)
	}
	a := st.Artifacts
	switch {
	case !a.Built:
		fmt.Fprintf(w, "artifacts\t%s\n", a.RecordNote)
	case a.Matches:
		fmt.Fprintf(w, "artifacts\t%s, profile %s: %d files, %d bytes, matching build.json\n", a.Version, a.Profile, a.Files, a.Bytes)
	default:
		fmt.Fprintf(w, "artifacts\t%s, profile %s: %d files, %d differ from build.json\n", a.Version, a.Profile, a.Files, len(a.Problems))
		for _, pr := range a.Problems {
			fmt.Fprintf(w, "\t  %s: %s\n", pr.Path, pr.What)
		}
	}
	for _, e := range st.Environments {
		key := "no signing key configured"
		if e.SigningKey != "" {
			key = "signing key " + e.SigningKey
			if !e.SigningKeyPresent {
				key += " (missing)"
			}
		}
		published := "nothing published"
		if len(e.PublishedSteps) > 0 || e.PublishedObjects > 0 {
			published = fmt.Sprintf("published: %s (%d objects)", strings.Join(e.PublishedSteps, ", "), e.PublishedObjects)
		}
		fmt.Fprintf(w, "environment %s\t%s; %s\n", app.colour(e.Colour, e.Name), key, published)
		for _, sp := range e.Progress {
			state := "in progress"
			if sp.Done {
				state = "done"
			}
			if sp.Plan != nil {
				fmt.Fprintf(w, "  %s\t%s: sent %d of %d planned (%s of %s)\n", sp.Step, state, sp.Sent, sp.Plan.Send+sp.Plan.Delete, plan.Size(sp.SentBytes), plan.Size(sp.Plan.SendBytes))
			}
		}
	}
	return w.Flush()
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	if commit == "" {
		return "(no commits)"
	}
	return commit
}
