package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/status"
)

func (app *App) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the release's version, git state, artifacts and what each environment has",
		Long: `Show the version, major, official flag and release name; the git state
(branch, detached, on the release tag, clean or dirty); the build in release/
(checked against build.json by size, and by sha256 for small files); and per
environment its key files, its lock and what its journal records as published.
status reads local state only: it never contacts a server or runs
credentials_command. A missing or unsafe key file is reported, not an error.`,
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

// printStatus writes the report as blocks: the version line, then git,
// artifacts and one block per environment, each a heading and indented
// "label  value" lines.
func (app *App) printStatus(st *status.Status) error {
	official, pre := "not official", "not a pre-release"
	if st.OfficialRelease {
		official = "official"
	}
	if st.Prerelease {
		pre = "pre-release"
	}
	fmt.Fprintf(app.Out, "%s %s (major %s) %q: %s, %s\n", st.Name, st.Version, st.Major, st.ReleaseName, official, pre)
	b := &block{w: app.Out}
	b.start("git")
	printGit(b, st)
	b.start("artifacts")
	printArtifacts(b, st.Artifacts)
	for _, e := range st.Environments {
		var tags []string
		if e.BuiltIn {
			tags = append(tags, "built in")
		}
		if e.Default {
			tags = append(tags, "default")
		}
		head := "environment " + app.colour(e.Colour, e.Name)
		if len(tags) > 0 {
			head += " (" + strings.Join(tags, ", ") + ")"
		}
		b.start(head)
		printEnvironment(b, e)
	}
	return b.flush()
}

// block writes a heading followed by aligned "  label  value" lines.
type block struct {
	w  io.Writer
	tw *tabwriter.Writer
}

func (b *block) start(heading string) {
	b.flush()
	fmt.Fprintf(b.w, "\n%s\n", heading)
	b.tw = tabwriter.NewWriter(b.w, 0, 4, 2, ' ', 0)
}

func (b *block) line(label, format string, args ...any) {
	fmt.Fprintf(b.tw, "  %s\t%s\n", label, fmt.Sprintf(format, args...))
}

func (b *block) flush() error {
	if b.tw == nil {
		return nil
	}
	return b.tw.Flush()
}

func printGit(b *block, st *status.Status) {
	g := st.Git
	switch {
	case g.Branch != "":
		b.line("head", "on branch %s at %s", g.Branch, short(g.Head))
	case g.OnTag:
		b.line("head", "detached on tag %s at %s", st.Version, short(g.Head))
	default:
		b.line("head", "detached at %s", short(g.Head))
	}
	if g.Clean {
		b.line("tree", "clean")
	} else {
		b.line("tree", "dirty (%d changed tracked files)", g.Changed)
	}
	switch {
	case g.TagCommit == "":
		b.line("tag "+st.Version, "not created yet")
	case g.OnTag:
		b.line("tag "+st.Version, "at HEAD")
	default:
		b.line("tag "+st.Version, "exists elsewhere, at %s (not HEAD)", short(g.TagCommit))
	}
	switch {
	case !g.RemoteFetched:
		b.line("tag on "+g.Remote, "unknown (no remote-tracking refs; run `git fetch %s`)", g.Remote)
	case g.TagOnRemote:
		b.line("tag on "+g.Remote, "present (as of the last fetch)")
	default:
		b.line("tag on "+g.Remote, "not seen (as of the last fetch)")
	}
	switch {
	case g.MainRef == "":
		b.line("maintenance", "no (%s's main branch was never fetched: nothing to compare with)", g.Remote)
	case g.Maintenance:
		b.line("maintenance", "yes: %s has the newer %s (no latest tag, stable alias or root manifest.nix)", strings.TrimPrefix(g.MainRef, "refs/remotes/"), g.NewestOnMain)
	default:
		b.line("maintenance", "no")
	}
	if g.PrevBranch != "" {
		b.line("tagged from", "%s", g.PrevBranch)
	}
}

func printArtifacts(b *block, a status.Artifacts) {
	if !a.Built {
		b.line("build.json", "%s", a.RecordNote)
	} else {
		var notes []string
		if !a.CurrentVersion {
			notes = append(notes, "not the version file's version")
		}
		if !a.AtHead {
			notes = append(notes, "not HEAD")
		}
		what := fmt.Sprintf("%s at %s, profile %s, target %s", a.Version, short(a.Commit), a.Profile, a.Target)
		if len(notes) > 0 {
			what += " (" + strings.Join(notes, ", ") + ")"
		}
		b.line("build.json", "%s", what)
		switch {
		case a.RecordNote != "":
			b.line("release/", "%d files, %s; not checked: %s", a.Files, plan.Size(a.Bytes), a.RecordNote)
		case a.Matches:
			b.line("release/", "%d files, %s, matching build.json (sizes; sha256 of %d small files)", a.Files, plan.Size(a.Bytes), a.Hashed)
		default:
			b.line("release/", "%d files, %s; %d differ from build.json:", a.Files, plan.Size(a.Bytes), len(a.Problems))
			const shown = 5
			for i, pr := range a.Problems {
				if i == shown {
					b.line("", "  … and %d more (--json lists them)", len(a.Problems)-shown)
					break
				}
				b.line("", "  %s: %s", pr.Path, pr.What)
			}
		}
	}
	for _, im := range a.Images {
		name := im.Name
		if im.System != "" {
			name += " " + im.System
		}
		var parts []string
		switch {
		case !im.Present:
			parts = append(parts, "layout "+im.Layout+" missing")
		default:
			parts = append(parts, im.Layout)
		}
		if im.Archive != "" {
			if im.ArchivePresent {
				parts = append(parts, "docker-archive")
			} else {
				parts = append(parts, "docker-archive missing")
			}
		}
		if !im.Recorded {
			parts = append(parts, "from `releng image build`, not in build.json")
		}
		b.line("image", "%s: %s", name, strings.Join(parts, ", "))
	}
}

func printEnvironment(b *block, e status.Environment) {
	if len(e.Keys) == 0 {
		b.line("keys", "no signing key configured")
	}
	for _, k := range e.Keys {
		state := k.State
		if k.Mode != "" && k.State != "ok" {
			state += " (mode " + k.Mode + ")"
		}
		if k.Note != "" {
			state += "; " + k.Note
		}
		b.line(strings.ReplaceAll(k.Role, "_", " "), "%s: %s", k.Path, state)
	}
	l := e.Lock
	holder := func() string {
		if l.PID == 0 {
			return "a releng that has not written its name yet"
		}
		s := fmt.Sprintf("%s, pid %d on %s", l.Command, l.PID, l.Host)
		if l.Since != nil {
			s += ", since " + l.Since.Local().Format(time.DateTime)
		}
		return s
	}
	switch {
	case l.Note != "":
		b.line("lock", "%s", l.Note)
	case l.Held:
		b.line("lock", "held by %s", holder())
	case l.PID != 0:
		b.line("lock", "free; left by %s, which ended without releasing it", holder())
	default:
		b.line("lock", "free")
	}
	if e.JournalNote != "" {
		b.line("journal", "%s", e.JournalNote)
	}
	if len(e.Releases) == 0 {
		b.line("published", "nothing recorded in %s", e.Journal)
	}
	// The built release and the newest one; --json lists them all.
	for i, r := range e.Releases {
		if i > 0 && !r.Built {
			continue
		}
		printPublished(b, r)
	}
	if n := len(e.Releases); n > 2 {
		b.line("", "(%d older releases in %s)", n-2, e.Journal)
	}
	switch e.Run {
	case "running":
		b.line("run", "in progress")
	case "interrupted":
		b.line("run", "interrupted during %s: run `releng upload --environment %s` again to finish it", strings.Join(e.Releases[0].Unfinished, ", "), e.Name)
	}
}

func printPublished(b *block, r status.Published) {
	which := r.Version
	if which == "" {
		which = r.Release
	}
	switch {
	case r.Yank:
		b.line("yank", "of %s: %d objects written; last %s", which, r.Objects, r.Last.Local().Format(time.DateTime))
		return
	case r.Built:
		which += " (this build)"
	default:
		which += " at " + short(r.Commit)
	}
	steps := "no step done"
	if len(r.Steps) > 0 {
		steps = "done: " + strings.Join(r.Steps, ", ")
	}
	b.line("published", "%s: %s; %d objects; last %s", which, steps, r.Objects, r.Last.Local().Format(time.DateTime))
	for _, sp := range r.Progress {
		if sp.Plan != nil && !sp.Done {
			b.line("", "  %s: sent %d of %d planned (%s of %s)", sp.Step, sp.Sent, sp.Plan.Send+sp.Plan.Delete, plan.Size(sp.SentBytes), plan.Size(sp.Plan.SendBytes))
		}
	}
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
