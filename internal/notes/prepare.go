package notes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
)

// PrepareOptions are the inputs of prepare besides the project.
type PrepareOptions struct {
	// Date is the release date, YYYY-MM-DD; "" means today (local time).
	Date string
}

// Plan is everything prepare writes and commits, computed (and checked)
// before anything is written.
type Plan struct {
	Version string
	Date    string
	// Output is the notes file (relative to the project root) and Notes its
	// new contents.
	Output string
	Notes  []byte
	// Summary is the table of contents (relative to the project root) when
	// it gets a new entry, else "", and SummaryText its new contents.
	Summary     string
	SummaryText []byte
	// Fragments are the fragment files to remove (relative to the root).
	Fragments []string
	// Message is the commit message, trailer included.
	Message string
	// Report is the check of the fragments (warnings only).
	Report *Report
	// Warnings are shown to the user; they do not stop prepare.
	Warnings []string

	root       string
	git        *gitx.Repo
	oldOutput  []byte // nil when the output did not exist
	oldSummary []byte
	newDirs    []string // directories Apply creates, deepest first
}

// Result is what prepare did (`releng prepare --json`).
type Result struct {
	Version  string   `json:"version"`
	Date     string   `json:"date"`
	Output   string   `json:"output"`
	Summary  string   `json:"summary"` // "" when the summary already had the entry
	Removed  []string `json:"removed"`
	Commit   string   `json:"commit"`
	Warnings []string `json:"warnings"`
}

// PrepareError is a reason prepare refuses to run; nothing was written.
type PrepareError struct{ Msg string }

func (e *PrepareError) Error() string { return e.Msg }

var dateRe = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// ValidDate checks a YYYY-MM-DD date.
func ValidDate(d string) error {
	if !dateRe.MatchString(d) {
		return fmt.Errorf("date %q: write it as YYYY-MM-DD, e.g. 2025-01-18", d)
	}
	if _, err := time.Parse("2006-01-02", d); err != nil {
		return fmt.Errorf("date %q is not a calendar date", d)
	}
	return nil
}

// Prepare gathers the fragments of the project into its release-notes file,
// links the file from the summary, removes the fragments and commits (SPEC
// §4.4). It refuses, before writing anything, when the working tree has
// changes or a fragment has an error (a *ProblemsError).
func Prepare(ctx context.Context, p *project.Project, opts PrepareOptions) (*Result, error) {
	pl, err := PlanPrepare(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return pl.Apply(ctx)
}

// PlanPrepare computes and checks what prepare will do; it writes nothing.
func PlanPrepare(ctx context.Context, p *project.Project, opts PrepareOptions) (*Plan, error) {
	date := opts.Date
	if date == "" {
		date = time.Now().Format("2006-01-02")
	}
	if err := ValidDate(date); err != nil {
		return nil, &PrepareError{Msg: err.Error()}
	}
	cfg, n := p.Config, p.Config.Notes
	pl := &Plan{Version: p.Version.Version, Date: date, root: p.Root, git: &gitx.Repo{Dir: p.Root, Env: p.Git.Env}}

	dirty, err := p.Git.Dirty(ctx)
	if err != nil {
		return nil, err
	}
	if len(dirty) > 0 {
		if len(dirty) > 5 {
			dirty = append(dirty[:5], "…")
		}
		return nil, &PrepareError{Msg: fmt.Sprintf("the working tree has uncommitted changes; commit or stash them first (prepare makes a commit of its own):\n  %s", strings.Join(dirty, "\n  "))}
	}

	settings, err := NewSettings(cfg)
	if err != nil {
		return nil, err
	}
	authors, err := LoadAuthors(p.Root, cfg.Abs(n.Authors), n.Authors, settings.ProfileKinds())
	if err != nil {
		return nil, err
	}
	fragDir, err := relToRoot(p.Root, n.FragmentsDir)
	if err != nil {
		return nil, &config.Error{File: cfg.Path, Msg: "notes.fragments_dir: " + err.Error()}
	}
	dir := ReadDir(p.Root, cfg.Abs(n.FragmentsDir), fragDir, false)
	body, report, err := Render(&Input{Dirs: []*Dir{dir}, Settings: settings, Authors: authors})
	if err != nil {
		return nil, err
	}
	pl.Report = report
	for _, pr := range report.Problems {
		pl.Warnings = append(pl.Warnings, pr.String())
	}
	if len(dir.Fragments) == 0 && !dir.Missing {
		pl.Warnings = append(pl.Warnings, fmt.Sprintf("%s: warning: no release-note fragments: the notes get only the version header", dir.Path))
	}

	// Every fragment must be tracked, or `git rm` would fail half-way.
	if len(dir.Fragments) > 0 {
		out, err := pl.git.Output(ctx, "ls-files", "-z", "--", filepath.ToSlash(fragDir))
		if err != nil {
			return nil, err
		}
		tracked := map[string]bool{}
		for _, f := range strings.Split(out, "\x00") {
			tracked[f] = true
		}
		var untracked []string
		for _, f := range dir.Fragments {
			r := filepath.ToSlash(filepath.Join(fragDir, f.Name))
			if !tracked[r] {
				untracked = append(untracked, r)
			}
			pl.Fragments = append(pl.Fragments, r)
		}
		if len(untracked) > 0 {
			return nil, &PrepareError{Msg: fmt.Sprintf("these fragments are not tracked by git; `git add` and commit them (or delete them) first:\n  %s", strings.Join(untracked, "\n  "))}
		}
	}

	vars := p.Vars()
	vars["date"] = date
	output, err := config.Expand(n.Output, vars)
	if err != nil {
		return nil, &config.Error{File: cfg.Path, Msg: "notes.output: " + err.Error()}
	}
	if output, err = relToRoot(p.Root, output); err != nil {
		return nil, &config.Error{File: cfg.Path, Msg: "notes.output: " + err.Error()}
	}
	pl.Output = filepath.ToSlash(output)
	old, err := readIfExists(p.Root, cfg.Abs(output))
	if err != nil {
		return nil, err
	}
	pl.oldOutput = old
	title, major, version := n.Title, p.Version.Major(), p.Version.Version
	existing := universalNewlines(string(old))
	versionHeader := "# " + title + " " + version + " ("
	for _, l := range strings.Split(existing, "\n") {
		if strings.HasPrefix(l, versionHeader) {
			return nil, &PrepareError{Msg: fmt.Sprintf("%s already has the notes of %s (%q); prepare runs once per release", output, version, l)}
		}
	}
	header := "# " + title + " " + major + " \"" + p.Version.ReleaseName + "\""
	if old != nil && strings.HasPrefix(existing, header) {
		lines := pySplitLines(existing, false)
		header = lines[0]
		existing = strings.Join(lines[1:], "\n")
	} else {
		header += " (" + date + ")\n\n"
	}
	text := header + "\n# " + title + " " + version + " (" + date + ")\n" + body + "\n\n" + existing
	pl.Notes = []byte(pyRStrip(text) + "\n")

	if old == nil {
		if err := pl.planSummary(cfg, vars); err != nil {
			return nil, err
		}
	}

	pl.Message = "release: release notes for " + version
	if cfg.Git.CommitTrailer != "" {
		pl.Message += "\n\n" + cfg.Git.CommitTrailer
	}
	return pl, nil
}

// planSummary inserts INDENT + summary_entry after every line of the
// summary that contains the marker.
func (pl *Plan) planSummary(cfg *config.Config, vars map[string]string) error {
	n := cfg.Notes
	summary, err := config.Expand(n.Summary, vars)
	if err != nil {
		return &config.Error{File: cfg.Path, Msg: "notes.summary: " + err.Error()}
	}
	entry, err := config.Expand(n.SummaryEntry, vars)
	if err != nil {
		return &config.Error{File: cfg.Path, Msg: "notes.summary_entry: " + err.Error()}
	}
	if summary, err = relToRoot(cfg.Root, summary); err != nil {
		return &config.Error{File: cfg.Path, Msg: "notes.summary: " + err.Error()}
	}
	summary = filepath.ToSlash(summary)
	old, err := readIfExists(cfg.Root, cfg.Abs(summary))
	if err != nil {
		return err
	}
	if old == nil {
		pl.Warnings = append(pl.Warnings, fmt.Sprintf("%s: warning: no such file: the release notes are not linked from a table of contents", summary))
		return nil
	}
	pl.oldSummary = old
	var out []string
	found := false
	for _, l := range strings.Split(universalNewlines(string(old)), "\n") {
		out = append(out, l)
		if i := strings.Index(l, n.SummaryMarker); i >= 0 && n.SummaryMarker != "" {
			out = append(out, l[:i]+entry)
			found = true
		}
	}
	if !found {
		return &PrepareError{Msg: fmt.Sprintf("%s has no line containing the marker %q: add the marker line where new releases go, or set notes.summary_marker", summary, n.SummaryMarker)}
	}
	pl.Summary = summary
	pl.SummaryText = []byte(strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n")
	return nil
}

// relToRoot makes a configured path relative to the project root; it must
// stay inside it.
func relToRoot(root, p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the project root %s", p, root)
	}
	return rel, nil
}

func readIfExists(root, path string) ([]byte, error) {
	data, err := fsutil.ReadFileIn(root, path, fsutil.MaxNotesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// Apply writes the files (each atomically), stages them, removes the
// fragments and commits. If git fails, the files and the index are put
// back as they were.
func (pl *Plan) Apply(ctx context.Context) (res *Result, err error) {
	abs := pl.abs
	pl.newDirs = missingDirs(filepath.Dir(abs(pl.Output)))
	if err := fsutil.WriteFileAtomic(abs(pl.Output), pl.Notes, 0o644); err != nil {
		return nil, err
	}
	paths := []string{pl.Output}
	if pl.Summary != "" {
		if err := fsutil.WriteFileAtomic(abs(pl.Summary), pl.SummaryText, 0o644); err != nil {
			pl.rollback(ctx, nil)
			return nil, err
		}
		paths = append(paths, pl.Summary)
	}
	defer func() {
		if err != nil {
			if rerr := pl.rollback(ctx, paths); rerr != nil {
				err = fmt.Errorf("%w\n(and putting the files back failed: %v; see `git status`)", err, rerr)
			} else {
				err = fmt.Errorf("%w\n(nothing was committed; the files are as they were)", err)
			}
		}
	}()
	if err = pl.git.Run(ctx, append([]string{"add", "--"}, paths...)...); err != nil {
		return nil, err
	}
	if len(pl.Fragments) > 0 {
		if err = pl.git.Run(ctx, append([]string{"rm", "-q", "--"}, pl.Fragments...)...); err != nil {
			return nil, err
		}
	}
	if err = pl.git.Run(ctx, "commit", "-q", "-m", pl.Message); err != nil {
		return nil, err
	}
	head, err := pl.git.Output(ctx, "rev-parse", "HEAD")
	if err != nil {
		return nil, err
	}
	return &Result{
		Version: pl.Version, Date: pl.Date, Output: pl.Output, Summary: pl.Summary,
		Removed: append([]string{}, pl.Fragments...), Commit: head, Warnings: append([]string{}, pl.Warnings...),
	}, nil
}

// abs resolves a path of the plan against the project root.
func (pl *Plan) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(pl.root, filepath.FromSlash(p))
}

// rollback restores the index, the fragments and the written files.
func (pl *Plan) rollback(ctx context.Context, staged []string) error {
	var errs []error
	all := append(append([]string{}, staged...), pl.Fragments...)
	if len(all) > 0 {
		// Unstage (a path new to git is simply dropped from the index).
		if head, _ := pl.git.Output(ctx, "rev-parse", "--verify", "--quiet", "HEAD"); head != "" {
			if err := pl.git.Run(ctx, append([]string{"reset", "-q", "HEAD", "--"}, all...)...); err != nil {
				errs = append(errs, err)
			}
		}
		if len(pl.Fragments) > 0 {
			if err := pl.git.Run(ctx, append([]string{"checkout", "-q", "HEAD", "--"}, pl.Fragments...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	restore := func(rel string, old []byte) {
		p := pl.abs(rel)
		if old == nil {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return
		}
		if err := fsutil.WriteFileAtomic(p, old, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	restore(pl.Output, pl.oldOutput)
	if pl.Summary != "" {
		restore(pl.Summary, pl.oldSummary)
	}
	for _, d := range pl.newDirs {
		os.Remove(d) // only if empty
	}
	return errors.Join(errs...)
}

// missingDirs lists dir and its ancestors that do not exist, deepest first.
func missingDirs(dir string) []string {
	var out []string
	for {
		if _, err := os.Stat(dir); err == nil {
			return out
		}
		out = append(out, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}
