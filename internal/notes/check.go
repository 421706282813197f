package notes

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/releng-project/releng/internal/fsutil"
)

// Severity of a problem: errors fail `notes check` and stop rendering;
// warnings are only shown.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Problem is one finding about a fragment, directory or authors file.
type Problem struct {
	Path     string   `json:"path"`
	Line     int      `json:"line"` // 0 for a directory
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// String is `path:line: message` (`path:line: warning: message`).
func (p Problem) String() string {
	loc := p.Path
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.Path, p.Line)
	}
	if p.Severity == Warning {
		return loc + ": warning: " + p.Message
	}
	return loc + ": " + p.Message
}

// Dir is the fragments of one directory.
type Dir struct {
	// Path is the directory as named in messages.
	Path string
	// Fragments are the `[!.]*.md` files, sorted by name.
	Fragments []*Fragment
	// Problems about the directory itself.
	Problems []Problem
	// Missing is true when the directory does not exist.
	Missing bool
}

// IsFragmentName reports whether a file name is a fragment's: `[!.]*.md`.
func IsFragmentName(name string) bool {
	return len(name) > len(".md") && name[0] != '.' && strings.HasSuffix(name, ".md")
}

// ReadDir reads and parses every fragment in dir, named display in
// messages. Nothing is read outside root: a directory or fragment that is a
// symbolic link leading out of it is an error problem naming the link, and
// none of its target is read. A missing directory is an error problem when
// required, else a warning (it then has no fragments).
func ReadDir(root, dir, display string, required bool) *Dir {
	d := &Dir{Path: display}
	ents, err := fsutil.ReadDirIn(root, dir)
	if err != nil {
		sev := Error
		msg := fmt.Sprintf("cannot read the fragments directory: %v", unwrapPathError(err))
		if errors.Is(err, fs.ErrNotExist) {
			d.Missing = true
			msg = "no such directory: there are no release-note fragments"
			if !required {
				sev = Warning
			}
		}
		d.Problems = append(d.Problems, Problem{Path: display, Severity: sev, Message: msg})
		return d
	}
	for _, e := range ents {
		if !IsFragmentName(e.Name()) {
			continue
		}
		d.Fragments = append(d.Fragments, readFragment(root, filepath.Join(dir, e.Name()), filepath.Join(display, e.Name())))
	}
	sort.Slice(d.Fragments, func(i, j int) bool { return d.Fragments[i].Name < d.Fragments[j].Name })
	return d
}

func readFragment(root, path, display string) *Fragment {
	bad := func(format string, args ...any) *Fragment {
		f := &Fragment{Path: display, Name: filepath.Base(display)}
		f.errorf(1, format, args...)
		return f
	}
	data, err := fsutil.ReadFileIn(root, path, MaxFragmentSize)
	var esc *fsutil.EscapeError
	var nr *fsutil.NotRegularError
	var big *fsutil.TooLargeError
	switch {
	case errors.As(err, &esc):
		return bad("is a symbolic link that leads outside %s; releng reads only files inside the project: replace the link with the fragment itself", root)
	case errors.As(err, &nr) && nr.Mode.IsDir():
		return bad("is a directory, not a fragment: rename it so it does not end in .md")
	case errors.As(err, &nr):
		return bad("is not a regular file (%s)", nr.Mode.Type())
	case errors.As(err, &big):
		return bad("is larger than %s; a fragment is at most that", fsutil.FormatSize(MaxFragmentSize))
	case err != nil:
		return bad("cannot read: %v", unwrapPathError(err))
	}
	return ParseFragment(display, data)
}

// Input is what check and render work on.
type Input struct {
	Dirs     []*Dir
	Settings *Settings
	// Authors is the authors file; nil when there is none (any name is
	// then credited as written).
	Authors *Authors
}

// Report is the result of Check.
type Report struct {
	Fragments int       `json:"fragments"`
	Errors    int       `json:"errors"`
	Warnings  int       `json:"warnings"`
	Problems  []Problem `json:"problems"`
}

// OK reports whether there are no errors.
func (r *Report) OK() bool { return r.Errors == 0 }

// Check validates every fragment and the authors file and returns every
// problem, sorted by path and line.
func Check(in *Input) *Report {
	r, _ := check(in)
	return r
}

// check also returns the resolved entries of each directory.
func check(in *Input) (*Report, [][]*entry) {
	r := &Report{Problems: []Problem{}}
	add := func(ps ...Problem) { r.Problems = append(r.Problems, ps...) }
	if in.Authors != nil {
		add(in.Authors.Problems...)
	}
	type first struct {
		path string
		line int
	}
	synopses := map[string]first{}
	var entries [][]*entry
	for _, d := range in.Dirs {
		add(d.Problems...)
		var es []*entry
		for _, f := range d.Fragments {
			r.Fragments++
			add(f.Problems...)
			if !f.keys {
				continue
			}
			e, ps := resolve(f, in.Settings, in.Authors)
			add(ps...)
			if f.HasSynopsis && !pyIsBlank(f.Synopsis) {
				if prev, dup := synopses[f.Synopsis]; dup {
					add(Problem{Path: f.Path, Line: f.Line(), Severity: Error,
						Message: fmt.Sprintf("duplicate synopsis: %s:%d has the same one; merge the two fragments or tell them apart", prev.path, prev.line)})
				} else {
					synopses[f.Synopsis] = first{f.Path, f.Line()}
				}
			}
			if len(ps) == 0 && !f.hasErrors() {
				es = append(es, e)
			}
		}
		entries = append(entries, es)
	}
	sort.SliceStable(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i], r.Problems[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Line < b.Line
	})
	for _, p := range r.Problems {
		if p.Severity == Error {
			r.Errors++
		} else {
			r.Warnings++
		}
	}
	return r, entries
}

// ProblemsError is returned when fragments have errors: nothing is
// rendered or written.
type ProblemsError struct {
	Report *Report
}

func (e *ProblemsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s in the release notes", e.Report.Errors, plural(e.Report.Errors, "problem", "problems"))
	for _, p := range e.Report.Problems {
		if p.Severity == Error {
			b.WriteString("\n" + p.String())
		}
	}
	return b.String()
}

// Render checks the fragments and renders the notes body (SPEC §4.2): each
// directory in turn, as Lix's renderer did when given several. It returns
// a *ProblemsError, and no text, when a fragment has an error.
func Render(in *Input) (string, *Report, error) {
	r, entries := check(in)
	if !r.OK() {
		return "", r, &ProblemsError{Report: r}
	}
	var b strings.Builder
	for _, es := range entries {
		renderEntries(&b, es, in.Settings)
	}
	return b.String(), r, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// maxExcerpt is the most of a text read from a file that a problem quotes.
const maxExcerpt = 160

// excerpts shortens the text arguments of a problem message to a short,
// printable excerpt: a message never carries more than a few words of what
// was read, nor control characters that would reach a terminal.
func excerpts(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if s, ok := a.(string); ok {
			a = excerpt(s)
		}
		out[i] = a
	}
	return out
}

func excerpt(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxExcerpt {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unicode.IsPrint(r) || r == ' ':
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}
