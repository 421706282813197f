package notes

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/releng-project/releng/internal/textutil"
)

// KnownKeys are the front-matter keys of a fragment (SPEC §4.1).
var KnownKeys = []string{"synopsis", "category", "issues", "prs", "cls", "significance", "credits"}

// MaxFragmentSize bounds what is read of one fragment; a release note is a
// few kilobytes.
const MaxFragmentSize = 1 << 20

// Fragment is one parsed release-note file.
type Fragment struct {
	// Path is the file as named in messages; Name its base name, the sort key.
	Path string
	Name string
	// Synopsis is the synopsis text; HasSynopsis says whether it is set to text.
	Synopsis    string
	HasSynopsis bool
	// Significant is true for `significance: significant`.
	Significant bool
	// Body is the Markdown after the front matter, stripped of surrounding
	// whitespace (Python's str.strip()).
	Body string
	// Problems found reading the file and its front matter. A fragment with
	// an error among them is not rendered.
	Problems []Problem

	// front matter values, for resolve (nil: absent)
	category                  *yvalue
	issues, prs, cls, credits []*yvalue
	synopsisLine, fmLine      int
	// keys is true once the front matter was read as a mapping: its values
	// can then be checked even when something else is wrong.
	keys bool
}

// Line returns the line of the synopsis (or of the front matter) for messages.
func (f *Fragment) Line() int {
	if f.synopsisLine > 0 {
		return f.synopsisLine
	}
	return max(f.fmLine, 1)
}

func (f *Fragment) problem(line int, sev Severity, format string, args ...any) {
	f.Problems = append(f.Problems, Problem{Path: f.Path, Line: max(line, 1), Severity: sev, Message: fmt.Sprintf(format, excerpts(args)...)})
}

func (f *Fragment) errorf(line int, format string, args ...any) {
	f.problem(line, Error, format, args...)
}

// hasErrors reports whether any problem of the fragment is an error.
func (f *Fragment) hasErrors() bool {
	for _, p := range f.Problems {
		if p.Severity == Error {
			return true
		}
	}
	return false
}

// ParseFragment parses the contents of a fragment file. It always returns
// a Fragment; what is wrong with it is in its Problems.
//
// The split follows python-frontmatter, which Lix uses: the text, stripped
// of surrounding whitespace, must start with a line of three or more dashes
// (trailing whitespace allowed); the front matter ends at the next such
// line; the rest, stripped, is the body.
func ParseFragment(path string, data []byte) *Fragment {
	f := &Fragment{Path: path, Name: baseName(path)}
	if len(data) > MaxFragmentSize {
		f.errorf(1, "file is %d bytes; a fragment is at most %d", len(data), MaxFragmentSize)
		return f
	}
	if !utf8.Valid(data) {
		off := invalidUTF8(data)
		f.errorf(lineAt(data, off), "not valid UTF-8 (byte 0x%02x): save the file as UTF-8", data[off])
		return f
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		f.errorf(1, "the file starts with a byte-order mark (U+FEFF), so it has no front matter: save it as UTF-8 without BOM")
		return f
	}
	text := string(data)
	sp := splitFrontMatter(text)
	f.fmLine = lineAt(data, sp.start)
	switch sp.status {
	case splitEmpty:
		f.errorf(1, "empty file: a fragment starts with a `---` line, then YAML front matter with at least `synopsis:`, then `---`, then the Markdown text")
		return f
	case splitNoFrontMatter:
		f.errorf(f.fmLine, "no front matter: a fragment must start with a `---` line, then YAML with at least `synopsis:`, then `---` (found %q)", firstLine(text[sp.start:sp.end]))
		return f
	case splitUnclosed:
		f.errorf(f.fmLine, "the front matter opened by this `---` is not closed: add a `---` line after the YAML (and before the text)")
		return f
	}
	open, closeStart, closeEnd, end := sp.open, sp.closeStart, sp.closeEnd, sp.end
	f.Body = pyStrip(text[closeEnd:end])
	fmOffset := lineAt(data, open) - 1 // YAML line 1 is this file line
	fm, yerr := parseYAML(text[open:closeStart])
	if yerr != nil {
		line := f.fmLine
		if yerr.line > 0 {
			line = fmOffset + yerr.line
		}
		msg := yerr.msg
		if lineStartsWithTab(text, line) {
			msg += " (this line starts with a tab: YAML indents with spaces only)"
		}
		f.errorf(line, "front matter: %s", msg)
		return f
	}
	f.readFrontMatter(fm, fmOffset)
	return f
}

// split is where splitFrontMatter found the parts of a fragment.
type split struct {
	status int
	// start and end delimit the text stripped of surrounding whitespace;
	// the front matter is text[open:closeStart], the body text[closeEnd:end].
	start, end, open, closeStart, closeEnd int
}

const (
	splitOK = iota
	splitEmpty
	splitNoFrontMatter
	splitUnclosed
)

// splitFrontMatter cuts a fragment as python-frontmatter does: the text,
// stripped, must start with a boundary line (`^-{3,}\s*$`); the front
// matter runs to the next boundary line; the rest is the body.
func splitFrontMatter(text string) split {
	sp := split{start: len(text) - len(pyLStrip(text)), end: len(pyRStrip(text))}
	if sp.start >= sp.end {
		sp.start, sp.status = 0, splitEmpty
		return sp
	}
	stripped := text[:sp.end]
	open, ok := boundaryAt(stripped, sp.start)
	if !ok {
		sp.status = splitNoFrontMatter
		return sp
	}
	sp.open = open
	for i := open; i < sp.end; {
		nl := strings.IndexByte(stripped[i:], '\n')
		if nl < 0 {
			break
		}
		i += nl + 1
		if e, ok := boundaryAt(stripped, i); ok {
			sp.closeStart, sp.closeEnd = i, e
			return sp
		}
	}
	sp.status = splitUnclosed
	return sp
}

// boundaryAt reports whether a front-matter boundary (the regexp
// `^-{3,}\s*$` of python-frontmatter, multi-line mode) matches at offset i
// of text, and where the match ends: like the greedy regexp, it takes the
// whitespace after the dashes up to the last line end before non-space.
func boundaryAt(text string, i int) (int, bool) {
	j := i
	for j < len(text) && text[j] == '-' {
		j++
	}
	if j-i < 3 {
		return 0, false
	}
	k := j
	for k < len(text) {
		r, size := utf8.DecodeRuneInString(text[k:])
		if !pyIsSpace(r) {
			break
		}
		k += size
	}
	if k == len(text) {
		return k, true
	}
	if nl := strings.LastIndexByte(text[j:k], '\n'); nl >= 0 {
		return j + nl, true
	}
	return 0, false
}

// readFrontMatter takes the known keys from the front matter mapping.
func (f *Fragment) readFrontMatter(fm *yvalue, off int) {
	if fm == nil {
		f.errorf(f.fmLine, "missing synopsis: the front matter is empty (add `synopsis: \"What changed\"`)")
		return
	}
	if fm.kind != yMap {
		f.errorf(off+fm.line, "the front matter is %s, not a mapping of keys (write `synopsis: \"What changed\"` and the other keys, one per line)", fm.kind.describe())
		return
	}
	f.keys = true
	for _, d := range fm.dups {
		f.problem(off+d.key.line, Warning, "key %s is given twice; the last one is used", d.key.s)
	}
	for _, p := range fm.pairs {
		line := off + p.key.line
		if p.key.kind != yStr || !isKnownKey(p.key.s) {
			f.errorf(line, "unknown key %s%s (known: %s)", quoteKey(p.key), suggest(p.key.s), strings.Join(KnownKeys, ", "))
		}
	}
	if p, ok := fm.get("synopsis"); !ok {
		f.errorf(f.fmLine, "missing synopsis: add `synopsis: \"What changed\"` to the front matter")
	} else {
		f.synopsisLine = off + p.key.line
		v := p.val
		switch {
		case v.kind == yStr:
			f.Synopsis, f.HasSynopsis = v.s, true
			if pyIsBlank(v.s) {
				f.problem(f.synopsisLine, Warning, "the synopsis is empty: the entry renders without a title")
			}
		case v.kind == yNull:
			f.errorf(f.synopsisLine, "synopsis is empty (YAML null): write the text, e.g. `synopsis: \"What changed\"` (or `synopsis: \"\"` for none)")
		case v.kind == ySeq || v.kind == yMap:
			f.errorf(f.synopsisLine, "synopsis is %s; it must be text", v.kind.describe())
		default:
			f.errorf(f.synopsisLine, "synopsis is %s, not text: quote it, e.g. `synopsis: %s`", describeValue(v), yamlQuote(v.src))
		}
	}
	if p, ok := fm.get("category"); ok {
		c := *p.val
		c.line = off + p.val.line
		f.category = &c
	}
	if p, ok := fm.get("significance"); ok {
		switch v := p.val; {
		case v.kind == yNull:
		case v.kind == yStr && v.s == "significant":
			f.Significant = true
		default:
			f.errorf(off+v.line, "significance must be `significant` or left out, not %s", describeValue(v))
		}
	}
	f.issues = listValues(fm, "issues", off)
	f.prs = listValues(fm, "prs", off)
	f.cls = listValues(fm, "cls", off)
	f.credits = listValues(fm, "credits", off)
}

// listValues is Lix's listify(): a list's items, or the value alone. The
// returned values carry file lines.
func listValues(fm *yvalue, key string, off int) []*yvalue {
	p, ok := fm.get(key)
	if !ok {
		return nil
	}
	items := []*yvalue{p.val}
	if p.val.kind == ySeq {
		items = p.val.items
	}
	out := make([]*yvalue, len(items))
	for i, it := range items {
		c := *it
		c.line = off + it.line
		out[i] = &c
	}
	return out
}

func isKnownKey(k string) bool {
	for _, x := range KnownKeys {
		if x == k {
			return true
		}
	}
	return false
}

func quoteKey(k *yvalue) string {
	if k.kind == yStr {
		return fmt.Sprintf("%q", k.s)
	}
	return fmt.Sprintf("%s (%s)", k.s, k.kind.describe())
}

// suggest names the known key closest to a misspelt one.
func suggest(k string) string {
	best, bestD := "", 3
	for _, x := range KnownKeys {
		if d := textutil.EditDistance(strings.ToLower(k), x); d < bestD {
			best, bestD = x, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// describeValue says what a value is, for messages: text quoted, other
// scalars as written with what YAML made of them.
func describeValue(v *yvalue) string {
	switch v.kind {
	case yStr:
		return fmt.Sprintf("%q", v.s)
	case ySeq, yMap, yNull:
		return v.kind.describe()
	}
	if v.src != "" && v.src != v.s {
		return fmt.Sprintf("%s (%s, %s)", v.src, v.kind.describe(), v.s)
	}
	return fmt.Sprintf("%s (%s)", v.s, v.kind.describe())
}

func baseName(p string) string { return filepath.Base(p) }

// lineAt is the 1-based line of byte offset off.
func lineAt(data []byte, off int) int {
	return 1 + bytes.Count(data[:min(off, len(data))], []byte("\n"))
}

func invalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return 0
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.TrimRight(s, "\r")
}

func lineStartsWithTab(text string, line int) bool {
	lines := strings.SplitN(text, "\n", line+1)
	if line < 1 || line > len(lines) {
		return false
	}
	l := lines[line-1]
	return strings.HasPrefix(strings.TrimLeft(l, " "), "\t")
}
