package notes

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/textutil"
)

// Author is one entry of the change-authors file (SPEC §4.3).
type Author struct {
	// Key is the name fragments credit (the YAML key).
	Key string
	// DisplayName is what is shown: display_name if set, else Key.
	DisplayName string
	// Profiles maps a profile kind ([notes.profiles]) to the user name.
	Profiles map[string]string
	// Line is the line of the key in the authors file.
	Line int
	id   string
}

// Authors is a parsed change-authors file.
type Authors struct {
	Path     string
	Problems []Problem
	byID     map[string]*Author
	keys     []string
}

// LoadAuthors reads the authors file at path (named display in messages),
// which must lie inside root (a symbolic link leading out of it is refused
// and its target never read). kinds are the profile kinds an entry may have
// besides display_name. A file that does not exist gives (nil, nil): no
// authors file.
func LoadAuthors(root, path, display string, kinds []string) (*Authors, error) {
	data, err := fsutil.ReadFileIn(root, path, fsutil.MaxAuthors)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		a := &Authors{Path: display, byID: map[string]*Author{}}
		var esc *fsutil.EscapeError
		if errors.As(err, &esc) {
			a.errorf(0, "is a symbolic link that leads outside %s; releng reads only files inside the project: replace the link with the file itself", root)
			return a, nil
		}
		a.errorf(0, "cannot read the authors file: %v", unwrapPathError(err))
		return a, nil
	}
	return ParseAuthors(display, data, kinds), nil
}

// ParseAuthors parses the contents of an authors file: a YAML mapping of
// author key to {display_name?, KIND?…}, read as PyYAML's safe loader
// reads it.
func ParseAuthors(path string, data []byte, kinds []string) *Authors {
	a := &Authors{Path: path, byID: map[string]*Author{}}
	if !utf8.Valid(data) {
		off := invalidUTF8(data)
		a.errorf(lineAt(data, off), "not valid UTF-8 (byte 0x%02x): save the file as UTF-8", data[off])
		return a
	}
	v, yerr := parseYAML(string(data))
	if yerr != nil {
		a.errorf(yerr.line, "%s", yerr.msg)
		return a
	}
	if v == nil {
		a.errorf(1, "the authors file is empty: it maps author names to {display_name, %s}", strings.Join(kinds, ", "))
		return a
	}
	if v.kind != yMap {
		a.errorf(v.line, "the authors file is %s; it must map author names to {display_name, %s}", v.kind.describe(), strings.Join(kinds, ", "))
		return a
	}
	known := append([]string{"display_name"}, kinds...)
	for _, d := range v.dups {
		a.problem(d.key.line, Warning, "author %s is listed twice; the last entry is used", d.key.s)
	}
	for _, p := range v.pairs {
		k := p.key
		if k.kind != yStr && k.kind != yInt {
			a.errorf(k.line, "author key %s is %s: quote it", k.s, k.kind.describe())
			continue
		}
		au := &Author{Key: k.s, DisplayName: k.s, Profiles: map[string]string{}, Line: k.line, id: keyID(k)}
		switch p.val.kind {
		case yNull:
		case yMap:
			for _, f := range p.val.pairs {
				name := f.key.s
				if f.key.kind != yStr || !contains(known, name) {
					a.errorf(f.key.line, "author %s: unknown field %s (known: %s)", k.s, quoteKey(f.key), strings.Join(known, ", "))
					continue
				}
				if f.val.kind == ySeq || f.val.kind == yMap {
					a.errorf(f.val.line, "author %s: %s is %s; it must be text", k.s, name, f.val.kind.describe())
					continue
				}
				if !f.val.truthy() {
					continue
				}
				if name == "display_name" {
					au.DisplayName = f.val.s
				} else {
					au.Profiles[name] = f.val.s
				}
			}
		default:
			a.errorf(p.val.line, "author %s: expected a mapping of {display_name, %s}, found %s", k.s, strings.Join(kinds, ", "), p.val.kind.describe())
			continue
		}
		a.byID[au.id] = au
		a.keys = append(a.keys, au.Key)
	}
	return a
}

func (a *Authors) errorf(line int, format string, args ...any) {
	a.problem(line, Error, format, args...)
}

func (a *Authors) problem(line int, sev Severity, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	a.Problems = append(a.Problems, Problem{Path: a.Path, Line: line, Severity: sev, Message: fmt.Sprintf(format, excerpts(args)...)})
}

func (a *Authors) lookup(v *yvalue) (*Author, bool) {
	au, ok := a.byID[keyID(v)]
	return au, ok
}

// closest returns the author key nearest to name, if one is close.
func (a *Authors) closest(name string) string {
	best, bestD := "", 3
	keys := append([]string(nil), a.keys...)
	sort.Strings(keys)
	for _, k := range keys {
		if d := textutil.EditDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
