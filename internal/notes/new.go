package notes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"
)

// NewOptions describe a fragment to write (`releng notes new`).
type NewOptions struct {
	// Name is the file name, with or without .md.
	Name        string
	Synopsis    string
	Category    string // "" writes the default category
	Issues      []string
	PRs         []string
	CLs         []string
	Credits     []string
	Significant bool
}

// InvalidError is a fragment that `notes new` refuses to write because
// `notes check` would reject it (a usage error).
type InvalidError struct{ Msgs []string }

func (e *InvalidError) Error() string { return strings.Join(e.Msgs, "\n") }

// ErrExists is returned when the fragment file already exists.
var ErrExists = errors.New("fragment already exists")

var fragmentNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// FragmentFileName validates a fragment name and returns its file name.
func FragmentFileName(name string) (string, error) {
	base := strings.TrimSuffix(name, ".md")
	switch {
	case base == "":
		return "", errors.New("the fragment name is empty: give a short name like fix-flake-lock-crash")
	case strings.ContainsAny(base, `/\`):
		return "", fmt.Errorf("fragment name %q contains a path separator: give a plain file name (it goes in the fragments directory)", name)
	case strings.HasPrefix(base, "."):
		return "", fmt.Errorf("fragment name %q starts with a dot: such files are not fragments", name)
	case len(base) > 120:
		return "", fmt.Errorf("fragment name %q is too long (at most 120 characters)", name)
	case !fragmentNameRe.MatchString(base):
		return "", fmt.Errorf("fragment name %q: use letters, digits, '.', '_', '+' and '-', starting with a letter or digit", name)
	}
	return base + ".md", nil
}

// NewFragmentText returns the text of a fragment with the given fields.
func NewFragmentText(o NewOptions, defaultCategory string) string {
	var b strings.Builder
	b.WriteString("---\n")
	b.WriteString("synopsis: " + yamlQuote(o.Synopsis) + "\n")
	list := func(key string, items []string) {
		if len(items) == 0 {
			return
		}
		q := make([]string, len(items))
		for i, it := range items {
			q[i] = yamlFlowItem(it)
		}
		b.WriteString(key + ": [" + strings.Join(q, ", ") + "]\n")
	}
	list("issues", o.Issues)
	list("prs", o.PRs)
	list("cls", o.CLs)
	cat := o.Category
	if cat == "" {
		cat = defaultCategory
	}
	b.WriteString("category: " + yamlQuote(cat) + "\n")
	list("credits", o.Credits)
	if o.Significant {
		b.WriteString("significance: significant\n")
	}
	b.WriteString("---\n\n")
	return b.String()
}

// CreateFragment writes a new fragment in dir (created if needed) after
// checking it as `notes check` would; it never overwrites a file. It
// returns the path written and warnings (an empty synopsis).
func CreateFragment(dir string, o NewOptions, s *Settings, a *Authors) (string, []Problem, error) {
	file, err := FragmentFileName(o.Name)
	if err != nil {
		return "", nil, &InvalidError{Msgs: []string{err.Error()}}
	}
	var msgs []string
	for _, f := range []struct{ name, v string }{{"synopsis", o.Synopsis}, {"category", o.Category}} {
		if !utf8.ValidString(f.v) {
			msgs = append(msgs, fmt.Sprintf("--%s is not valid UTF-8", f.name))
		}
	}
	if strings.ContainsAny(o.Synopsis, "\r\n") {
		msgs = append(msgs, "--synopsis must be one line")
	}
	for _, l := range [][]string{o.Issues, o.PRs, o.CLs, o.Credits} {
		for _, it := range l {
			if !utf8.ValidString(it) || strings.TrimSpace(it) == "" {
				msgs = append(msgs, fmt.Sprintf("%q is not a valid reference or name", it))
			}
		}
	}
	if len(msgs) > 0 {
		return "", nil, &InvalidError{Msgs: msgs}
	}
	path := filepath.Join(dir, file)
	text := NewFragmentText(o, s.DefaultCategory)
	f := ParseFragment(path, []byte(text))
	probs := f.Problems
	if f.keys {
		_, ps := resolve(f, s, a)
		probs = append(probs, ps...)
	}
	var warnings []Problem
	for _, p := range probs {
		if p.Severity == Error {
			msgs = append(msgs, p.Message)
		} else {
			warnings = append(warnings, p)
		}
	}
	if len(msgs) > 0 {
		return "", nil, &InvalidError{Msgs: msgs}
	}
	if err := createExclusive(path, []byte(text)); err != nil {
		return "", nil, err
	}
	return path, warnings, nil
}

// createExclusive writes path atomically and only if it does not exist:
// the data goes to a temporary file that is then hard-linked into place.
func createExclusive(path string, data []byte) (err error) {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w; choose another name or edit it", path, ErrExists)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w; choose another name or edit it", path, ErrExists)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var plainItemRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.#-]*$`)

// yamlFlowItem writes a list item plain when YAML reads it back as the same
// text or as the same number, else double-quoted.
func yamlFlowItem(s string) string {
	if plainItemRe.MatchString(s) {
		switch resolvePlain(s) {
		case "!!str":
			return s
		case "!!int":
			if isDigits(s) && (s == "0" || s[0] != '0') {
				return s
			}
		}
	}
	return yamlQuote(s)
}

// yamlQuote writes s as a YAML double-quoted scalar, escaping what YAML
// does not allow as is.
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == 0x2028 || r == 0x2029 || (r >= 0xd800 && r < 0xe000) || r == 0xfeff || r == 0xfffe || r == 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
