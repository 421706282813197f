package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/notes"
)

func (app *App) notesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notes",
		Short: "Release-note fragments: check them, render them, write a new one",
		Long: `Release notes are gathered from fragments: Markdown files in the fragments
directory ([notes] fragments_dir, default doc/manual/rl-next) that start with
YAML front matter between --- lines (SPEC §4, docs/notes.md):

  ---
  synopsis: "What changed, in one line"
  category: Fixes
  issues: [fj#123, 456]
  prs: [gh#789]
  cls: [2345]
  credits: [jade]
  ---

  The text, in Markdown.

These commands work without a releng.toml: the defaults of SPEC §3.3 apply,
with the directory's name as the project name.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for \"releng notes\" (use check, render or new; see `releng notes --help`)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(app.notesCheckCommand(), app.notesRenderCommand(), app.notesNewCommand())
	return cmd
}

// notesEnv is the configuration the notes commands work with.
type notesEnv struct {
	root     string
	cfg      *config.Config
	settings *notes.Settings
	authors  *notes.Authors
}

// loadNotesEnv reads releng.toml, or takes the defaults when there is none
// (and no --config), and the authors file: authorsFlag when given (it must
// exist), else [notes] authors when that file exists.
func (app *App) loadNotesEnv(authorsFlag string) (*notesEnv, error) {
	dir := app.Dir
	if dir == "" {
		dir = "."
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var cfg *config.Config
	if _, statErr := os.Stat(filepath.Join(root, config.FileName)); app.ConfigFile == "" && errors.Is(statErr, os.ErrNotExist) {
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			return nil, usageErrorf("%s: no such directory (check -C)", root)
		}
		cfg = config.Defaults(filepath.Base(root))
		cfg.Root = root
	} else if cfg, err = app.loadConfig(); err != nil {
		return nil, err
	}
	s, err := notes.NewSettings(cfg)
	if err != nil {
		return nil, err
	}
	env := &notesEnv{root: cfg.Root, cfg: cfg, settings: s}
	if authorsFlag != "" {
		path := env.abs(authorsFlag)
		if _, err := os.Stat(path); err != nil {
			return nil, usageErrorf("--authors %s: %v", authorsFlag, errors.Unwrap(err))
		}
		env.authors, err = notes.LoadAuthors(env.rootFor(path), path, authorsFlag, s.ProfileKinds())
	} else {
		env.authors, err = notes.LoadAuthors(cfg.Root, cfg.Abs(cfg.Notes.Authors), cfg.Notes.Authors, s.ProfileKinds())
	}
	return env, err
}

// abs resolves a path given on the command line against the project
// directory (-C), as if releng had been started there.
func (env *notesEnv) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(env.root, p)
}

// rootFor is the directory reads of p are confined to: the project root,
// or, for a path given on the command line outside the project, the
// directory it names (or holds it): symbolic links are not followed out of it.
func (env *notesEnv) rootFor(p string) string {
	if fsutil.Within(env.root, filepath.Clean(p)) {
		return env.root
	}
	if st, err := os.Lstat(p); err == nil && st.IsDir() {
		return filepath.Clean(p)
	}
	return filepath.Dir(p)
}

// dirs reads the directories given, or the configured fragments directory.
func (env *notesEnv) dirs(args []string) []*notes.Dir {
	if len(args) == 0 {
		fd := env.cfg.Notes.FragmentsDir
		return []*notes.Dir{notes.ReadDir(env.root, env.cfg.Abs(fd), filepath.Clean(fd), false)}
	}
	var out []*notes.Dir
	for _, a := range args {
		out = append(out, notes.ReadDir(env.rootFor(env.abs(a)), env.abs(a), filepath.Clean(a), true))
	}
	return out
}

func (env *notesEnv) input(args []string) *notes.Input {
	return &notes.Input{Dirs: env.dirs(args), Settings: env.settings, Authors: env.authors}
}

func (app *App) notesCheckCommand() *cobra.Command {
	var authors string
	cmd := &cobra.Command{
		Use:   "check [DIR...]",
		Short: "Check every release-note fragment; print every problem as path:line: message",
		Long: `Check every fragment in the directories given (default: [notes]
fragments_dir) and report every problem at once, one per line as
path:line: message: unreadable files, missing or malformed front matter
(YAML errors with their line), a missing or non-text synopsis, unknown keys,
unknown categories, malformed issue/PR/CL references, credits not in the
authors file (when there is one), duplicate synopses. An empty synopsis is
a warning. Meant for CI on every change.

With --json, the report is one JSON document on stdout (docs/notes.md).

EXIT STATUS
  0  no errors (warnings may have been printed)
  1  at least one error
  2  usage or configuration error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.runNotesCheck(args, authors)
		},
	}
	cmd.Flags().StringVar(&authors, "authors", "", "authors `FILE` (default: [notes] authors, when it exists)")
	return cmd
}

func (app *App) runNotesCheck(args []string, authorsFlag string) error {
	env, err := app.loadNotesEnv(authorsFlag)
	if err != nil {
		return err
	}
	rep := notes.Check(env.input(args))
	if app.JSON {
		if err := app.printJSON(rep); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(app.Out, p)
		}
	}
	if !rep.OK() {
		return &exitError{code: 1, msg: fmt.Sprintf("notes check: %s in %d %s", countProblems(rep), rep.Fragments, plural(rep.Fragments, "fragment", "fragments"))}
	}
	if !app.JSON {
		fmt.Fprintf(app.Out, "%d %s checked: %s\n", rep.Fragments, plural(rep.Fragments, "fragment", "fragments"), countProblems(rep))
	}
	return nil
}

// countProblems says "no problems", "2 errors", "1 error, 1 warning"…
func countProblems(r *notes.Report) string {
	switch {
	case r.Errors == 0 && r.Warnings == 0:
		return "no problems"
	case r.Warnings == 0:
		return fmt.Sprintf("%d %s", r.Errors, plural(r.Errors, "error", "errors"))
	case r.Errors == 0:
		return fmt.Sprintf("no errors, %d %s", r.Warnings, plural(r.Warnings, "warning", "warnings"))
	}
	return fmt.Sprintf("%d %s, %d %s", r.Errors, plural(r.Errors, "error", "errors"), r.Warnings, plural(r.Warnings, "warning", "warnings"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (app *App) notesRenderCommand() *cobra.Command {
	var authors string
	cmd := &cobra.Command{
		Use:   "render [--authors FILE] [DIR...]",
		Short: "Print the rendered release notes of the fragments",
		Long: `Render the fragments of the directories given (default: [notes]
fragments_dir) as the body of the release notes (SPEC §4.2), byte for byte
as Lix's renderer of the configured generation ([notes] layout,
default_tracker, link_text), and print it on stdout. Several directories
are rendered one after the other. No git, no files written.

If a fragment has an error, nothing is printed on stdout: the problems go
to stderr as path:line: message (as notes check prints them).

EXIT STATUS
  0  rendered
  1  a fragment has an error
  2  usage or configuration error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := app.loadNotesEnv(authors)
			if err != nil {
				return err
			}
			body, rep, err := notes.Render(env.input(args))
			for _, p := range rep.Problems {
				fmt.Fprintln(app.Err, p)
			}
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("notes render: %s; nothing rendered", countProblems(rep))}
			}
			_, err = fmt.Fprint(app.Out, body)
			return err
		},
	}
	cmd.Flags().StringVar(&authors, "authors", "", "authors `FILE` (default: [notes] authors, when it exists)")
	return cmd
}

func (app *App) notesNewCommand() *cobra.Command {
	var o notes.NewOptions
	cmd := &cobra.Command{
		Use:   "new NAME [--synopsis S] [--category C] [--issues …] [--prs …] [--cls …] [--credits …]",
		Short: "Write a new release-note fragment",
		Long: `Write the fragment NAME.md in [notes] fragments_dir with the given front
matter and an empty body to fill in. NAME is a plain file name (letters,
digits, '.', '_', '+', '-'). The fragment is checked as notes check would
check it before it is written; an existing file is never overwritten.
List flags take comma-separated values or repeat: --issues fj#12,gh#34.

EXIT STATUS
  0  written
  1  the file exists or cannot be written
  2  usage error: a bad NAME, or a field notes check would reject`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("notes new takes one NAME, got %d arguments (see `releng notes new --help`)", len(args))
			}
			o.Name = args[0]
			return app.runNotesNew(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Synopsis, "synopsis", "", "one line saying what changed")
	f.StringVar(&o.Category, "category", "", "one of [notes] categories (default: [notes] default_category)")
	f.StringSliceVar(&o.Issues, "issues", nil, "issue references: N or TRACKER#N")
	f.StringSliceVar(&o.PRs, "prs", nil, "pull-request references: N or TRACKER#N")
	f.StringSliceVar(&o.CLs, "cls", nil, "Gerrit change numbers")
	f.StringSliceVar(&o.Credits, "credits", nil, "who to thank: author names from the authors file")
	f.BoolVar(&o.Significant, "significant", false, "list the entry first in its category")
	return cmd
}

func (app *App) runNotesNew(o notes.NewOptions) error {
	env, err := app.loadNotesEnv("")
	if err != nil {
		return err
	}
	fd := env.cfg.Notes.FragmentsDir
	path, warnings, err := notes.CreateFragment(env.cfg.Abs(fd), o, env.settings, env.authors)
	var inv *notes.InvalidError
	switch {
	case errors.As(err, &inv):
		return usageErrorf("notes new: %s", inv.Error())
	case err != nil:
		return err
	}
	shown := filepath.Join(filepath.Clean(fd), filepath.Base(path))
	if app.JSON {
		return app.printJSON(map[string]string{"path": shown})
	}
	for _, w := range warnings {
		fmt.Fprintf(app.Err, "%s:%d: warning: %s\n", shown, w.Line, w.Message)
	}
	if o.Synopsis == "" {
		fmt.Fprintln(app.Err, "releng: give the fragment a synopsis (the `synopsis:` line) before it is released")
	}
	fmt.Fprintf(app.Out, "wrote %s: write what changed below its front matter\n", shown)
	return nil
}
