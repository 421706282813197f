package notes

import (
	"fmt"
	"sort"
	"strings"

	"github.com/releng-project/releng/internal/config"
)

// Layouts and link texts (SPEC §4.2).
const (
	LayoutSpaced      = "spaced"
	LayoutCompact     = "compact"
	LinkTextTracker   = "tracker"
	LinkTextAsWritten = "as-written"
)

// Settings are the [notes] keys rendering depends on.
type Settings struct {
	Categories      []string
	DefaultCategory string
	// DefaultTracker is the tracker a bare number refers to; "" makes a bare
	// number an error.
	DefaultTracker string
	Layout         string
	LinkText       string
	CLURL          string
	Trackers       map[string]config.Tracker
	Profiles       map[string]string
	ProfileOrder   []string

	prefixes map[string]string // tracker name or alias → tracker name
	names    []string          // prefixes, sorted, for messages
}

// NewSettings takes the rendering settings from a configuration and checks
// them (a *config.Error, exit 2, when they are inconsistent).
func NewSettings(c *config.Config) (*Settings, error) {
	n := c.Notes
	s := &Settings{
		Categories:      n.Categories,
		DefaultCategory: n.DefaultCategory,
		Layout:          n.Layout,
		LinkText:        n.LinkText,
		CLURL:           n.CLURL,
		Trackers:        n.Trackers,
		Profiles:        n.Profiles,
		ProfileOrder:    n.ProfileOrder,
		prefixes:        map[string]string{},
	}
	if n.DefaultTracker != nil {
		s.DefaultTracker = *n.DefaultTracker
	}
	cerr := func(format string, args ...any) error {
		return &config.Error{File: c.Path, Msg: fmt.Sprintf(format, args...)}
	}
	if s.Layout != LayoutSpaced && s.Layout != LayoutCompact {
		return nil, cerr("notes.layout %q: must be %q or %q", s.Layout, LayoutSpaced, LayoutCompact)
	}
	if s.LinkText != LinkTextTracker && s.LinkText != LinkTextAsWritten {
		return nil, cerr("notes.link_text %q: must be %q or %q", s.LinkText, LinkTextTracker, LinkTextAsWritten)
	}
	if !contains(s.Categories, s.DefaultCategory) {
		return nil, cerr("notes.default_category %q is not one of notes.categories", s.DefaultCategory)
	}
	names := make([]string, 0, len(s.Trackers))
	for name := range s.Trackers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := s.Trackers[name]
		for _, p := range append([]string{name}, t.Aliases...) {
			if p == "" || strings.ContainsAny(p, "# \t") {
				return nil, cerr("notes.trackers.%s: %q cannot be a reference prefix (no spaces or #)", name, p)
			}
			if other, ok := s.prefixes[p]; ok && other != name {
				return nil, cerr("notes.trackers: %q names both tracker %s and tracker %s", p, other, name)
			}
			s.prefixes[p] = name
		}
		for key, tmpl := range map[string]string{"issue_url": t.IssueURL, "pr_url": t.PRURL} {
			if tmpl == "" {
				continue
			}
			if _, err := config.Expand(tmpl, map[string]string{"n": "1"}); err != nil {
				return nil, cerr("notes.trackers.%s.%s: %v (only {n} is known here)", name, key, err)
			}
		}
	}
	for p := range s.prefixes {
		s.names = append(s.names, p)
	}
	sort.Strings(s.names)
	if s.DefaultTracker != "" {
		if _, ok := s.Trackers[s.DefaultTracker]; !ok {
			return nil, cerr("notes.default_tracker %q is not a configured tracker", s.DefaultTracker)
		}
	}
	if _, err := config.Expand(s.CLURL, map[string]string{"n": "1"}); err != nil {
		return nil, cerr("notes.cl_url: %v (only {n} is known here)", err)
	}
	for kind, tmpl := range s.Profiles {
		if _, err := config.Expand(tmpl, map[string]string{"user": "u"}); err != nil {
			return nil, cerr("notes.profiles.%s: %v (only {user} is known here)", kind, err)
		}
	}
	for _, k := range s.ProfileOrder {
		if _, ok := s.Profiles[k]; !ok {
			return nil, cerr("notes.profile_order names %q, which is not in [notes.profiles]", k)
		}
	}
	return s, nil
}

// ProfileKinds are the profile kinds an author entry may have.
func (s *Settings) ProfileKinds() []string {
	kinds := append([]string(nil), s.ProfileOrder...)
	var rest []string
	for k := range s.Profiles {
		if !contains(kinds, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(kinds, rest...)
}

// entry is a fragment resolved against the settings and authors: what
// the renderer prints.
type entry struct {
	name        string
	significant bool
	category    string
	header      string
	body        string
	credits     string
}

// resolve validates f against the settings and authors (nil: no authors
// file) and returns its entry, with the problems found.
func resolve(f *Fragment, s *Settings, a *Authors) (*entry, []Problem) {
	var probs []Problem
	errorf := func(line int, format string, args ...any) {
		probs = append(probs, Problem{Path: f.Path, Line: max(line, 1), Severity: Error, Message: fmt.Sprintf(format, args...)})
	}
	e := &entry{name: f.Name, significant: f.Significant, header: f.Synopsis, body: f.Body}

	e.category = s.DefaultCategory
	if c := f.category; c != nil {
		if c.kind == yStr && contains(s.Categories, c.s) {
			e.category = c.s
		} else {
			hint := ""
			for _, x := range s.Categories {
				if c.kind == yStr && strings.EqualFold(strings.TrimSpace(c.s), x) {
					hint = fmt.Sprintf(" (did you mean %q?)", x)
				}
			}
			errorf(c.line, "unknown category %s%s; use one of: %s", describeValue(c), hint, strings.Join(s.Categories, ", "))
		}
	}

	var links []string
	for _, group := range []struct {
		items []*yvalue
		pr    bool
	}{{f.issues, false}, {f.prs, true}} {
		for _, v := range group.items {
			l, err := s.link(v, group.pr)
			if err != nil {
				errorf(v.line, "%s", err)
				continue
			}
			links = append(links, l)
		}
	}
	for _, v := range f.cls {
		if (v.kind != yStr && v.kind != yInt) || !isDigits(v.s) {
			errorf(v.line, "malformed CL reference %s: a CL is a number, e.g. `cls: [1234]`", describeValue(v))
			continue
		}
		url, _ := config.Expand(s.CLURL, map[string]string{"n": v.s})
		links = append(links, "[cl/"+v.s+"]("+url+")")
	}
	if len(links) > 0 {
		e.header += " " + strings.Join(links, " ")
	}

	var names []string
	for _, v := range f.credits {
		name, err := s.credit(v, a)
		if err != nil {
			errorf(v.line, "%s", err)
			continue
		}
		names = append(names, name)
	}
	if len(names) > 0 {
		e.credits = pyIndent("Many thanks to "+pluralList(names)+" for this.", "  ")
	}
	return e, probs
}

// link renders one issue or PR reference: `N` (the default tracker) or
// `PREFIX#N` (a tracker's name or alias).
func (s *Settings) link(v *yvalue, pr bool) (string, error) {
	what := "issue"
	if pr {
		what = "PR"
	}
	bad := func(why string) error {
		return fmt.Errorf("malformed %s reference %s: %s", what, describeValue(v), why)
	}
	if v.kind != yStr && v.kind != yInt {
		return "", bad(s.refHelp())
	}
	raw := v.s
	var tracker, n, text string
	if isDigits(raw) {
		if s.DefaultTracker == "" {
			return "", fmt.Errorf("%s reference %s is a bare number, and this project has no default tracker (notes.default_tracker = \"\"): write TRACKER#%s with TRACKER one of %s", what, describeValue(v), raw, strings.Join(s.names, ", "))
		}
		tracker, n, text = s.DefaultTracker, trimZeros(raw), "#"+raw
	} else {
		i := strings.IndexByte(raw, '#')
		if i <= 0 {
			return "", bad(s.refHelp())
		}
		name, ok := s.prefixes[raw[:i]]
		if !ok {
			return "", bad(fmt.Sprintf("unknown tracker %q (known: %s)", raw[:i], strings.Join(s.names, ", ")))
		}
		if !isDigits(raw[i+1:]) {
			return "", bad(fmt.Sprintf("the part after # must be a number; %s", s.refHelp()))
		}
		tracker, n, text = name, trimZeros(raw[i+1:]), raw
	}
	if s.LinkText == LinkTextTracker {
		text = tracker + "#" + n
	}
	t := s.Trackers[tracker]
	tmpl := t.IssueURL
	if pr {
		tmpl = t.PRURL
	}
	if tmpl == "" {
		key := "issue_url"
		if pr {
			key = "pr_url"
		}
		return "", fmt.Errorf("%s reference %s: tracker %s has no %s configured", what, describeValue(v), tracker, key)
	}
	url, err := config.Expand(tmpl, map[string]string{"n": n})
	if err != nil {
		return "", err
	}
	return "[" + text + "](" + url + ")", nil
}

func (s *Settings) refHelp() string {
	h := "write N or TRACKER#N with TRACKER one of " + strings.Join(s.names, ", ")
	if s.DefaultTracker == "" {
		h = "write TRACKER#N with TRACKER one of " + strings.Join(s.names, ", ")
	}
	return h + ", as a list: `issues: [fj#123, 456]`"
}

// credit renders one credited name.
func (s *Settings) credit(v *yvalue, a *Authors) (string, error) {
	if v.kind != yStr && v.kind != yInt {
		return "", fmt.Errorf("credit %s is not a name: write `credits: [name]` with names from the authors file", describeValue(v))
	}
	if a == nil {
		return v.s, nil
	}
	au, ok := a.lookup(v)
	if !ok {
		hint := ""
		if c := a.closest(v.s); c != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", c)
		}
		return "", fmt.Errorf("credit %q is not in the authors file %s%s: add them there or fix the spelling", v.s, a.Path, hint)
	}
	return s.showAuthor(au), nil
}

// showAuthor is `[DISPLAY](PROFILE_URL)` for the first profile kind the
// author has, or the display name alone.
func (s *Settings) showAuthor(au *Author) string {
	for _, kind := range s.ProfileOrder {
		if user, ok := au.Profiles[kind]; ok {
			url, _ := config.Expand(s.Profiles[kind], map[string]string{"user": user})
			return "[" + au.DisplayName + "](" + url + ")"
		}
	}
	return au.DisplayName
}

// pluralList joins names as English: A; A and B; A, B, and C.
func pluralList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	comma := ""
	if len(names) >= 3 {
		comma = ","
	}
	return strings.Join(names[:len(names)-1], ", ") + comma + " and " + names[len(names)-1]
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// trimZeros is Python's str(int(s)) for a string of digits.
func trimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

// renderEntries prints one directory's entries (SPEC §4.2).
func renderEntries(b *strings.Builder, entries []*entry, s *Settings) {
	byCat := map[string][]*entry{}
	for _, e := range entries {
		byCat[e.category] = append(byCat[e.category], e)
	}
	spaced := s.Layout == LayoutSpaced
	for _, cat := range s.Categories {
		es := byCat[cat]
		if len(es) == 0 {
			continue
		}
		delete(byCat, cat) // a category listed twice renders once
		sort.SliceStable(es, func(i, j int) bool {
			if es[i].significant != es[j].significant {
				return es[i].significant
			}
			return es[i].name < es[j].name
		})
		if spaced {
			b.WriteString("## " + cat + "\n\n")
		} else {
			b.WriteString("\n## " + cat + "\n")
		}
		for _, e := range es {
			switch {
			case e.header != "":
				b.WriteString("- " + e.header + "\n\n")
			case spaced:
				b.WriteString("- ")
			}
			b.WriteString(pyIndent(e.body, "  "))
			b.WriteString("\n")
			if e.credits != "" {
				b.WriteString("\n" + e.credits + "\n")
			}
			if spaced {
				b.WriteString("\n")
			}
		}
		if spaced {
			b.WriteString("\n")
		}
	}
}
