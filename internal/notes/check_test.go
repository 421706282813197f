package notes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeDir writes files into a new fragments directory and reads it back.
func writeDir(t *testing.T, files map[string]string) (string, *Dir) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rl-next")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ReadDir(testRoot, dir, "rl-next", true)
}

func problemStrings(r *Report) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	return out
}

// TestCheckProblems: one fragment per problem `notes check` reports, with
// the path:line: message it gives.
func TestCheckProblems(t *testing.T) {
	for _, c := range []struct {
		name    string
		text    string
		authors bool
		want    []string // prefixes of the problems, in order
	}{
		{"valid", fm("synopsis: Fine\ncategory: Fixes\nissues: [fj#1, 2]\nprs: gh#3\ncls: [4]\ncredits: [jade]\nsignificance: significant", "Body"), true, nil},
		{"malformed YAML", "---\nsynopsis: x\ncategory: [Fixes\n---\nbody\n", false,
			[]string{"rl-next/a.md:3: front matter: YAML: did not find expected ',' or ']'"}},
		{"tab-indented list", "---\nsynopsis: x\nissues:\n\t- fj#1\n---\n", false,
			[]string{"rl-next/a.md:4: front matter: YAML: found character that cannot start any token (this line starts with a tab: YAML indents with spaces only)"}},
		{"missing synopsis", fm("category: Fixes", "body"), false,
			[]string{"rl-next/a.md:1: missing synopsis: add `synopsis: \"What changed\"`"}},
		{"empty front matter", fm("", "body"), false, []string{"rl-next/a.md:1: missing synopsis: the front matter is empty"}},
		{"empty synopsis is a warning", fm("synopsis: \"\"", "body"), false,
			[]string{"rl-next/a.md:2: warning: the synopsis is empty: the entry renders without a title"}},
		{"synopsis is a number", fm("synopsis: 42", ""), false,
			[]string{"rl-next/a.md:2: synopsis is 42 (a YAML number), not text: quote it, e.g. `synopsis: \"42\"`"}},
		{"synopsis is octal", fm("synopsis: 010", ""), false,
			[]string{"rl-next/a.md:2: synopsis is 010 (a YAML number, 8), not text: quote it, e.g. `synopsis: \"010\"`"}},
		{"synopsis is a boolean", fm("synopsis: no", ""), false,
			[]string{"rl-next/a.md:2: synopsis is no (a YAML boolean, False), not text"}},
		{"synopsis is a date", fm("synopsis: 2025-01-18", ""), false,
			[]string{"rl-next/a.md:2: synopsis is 2025-01-18 (a YAML date), not text"}},
		{"synopsis is null", fm("synopsis:", ""), false,
			[]string{"rl-next/a.md:2: synopsis is empty (YAML null)"}},
		{"synopsis is a list", fm("synopsis: [a]", ""), false,
			[]string{"rl-next/a.md:2: synopsis is a list; it must be text"}},
		{"unknown key", fm("synopsis: S\nissue: [1]\n3: x", ""), false,
			[]string{`rl-next/a.md:3: unknown key "issue" (did you mean "issues"?)`, "rl-next/a.md:4: unknown key 3 (a YAML number)"}},
		{"unknown category", fm("synopsis: S\ncategory: fixes", ""), false,
			[]string{`rl-next/a.md:3: unknown category "fixes" (did you mean "Fixes"?); use one of: Breaking Changes, Features`}},
		{"category is not text", fm("synopsis: S\ncategory: [Fixes]", ""), false,
			[]string{"rl-next/a.md:3: unknown category a list"}},
		{"malformed references", fm("synopsis: S\nissues: [fj#, 'fj#1, fj#2', 1.5, ~]\nprs: [pr#1, -3]\ncls: [abc, 1e3]", ""), false, []string{
			`rl-next/a.md:3: malformed issue reference "fj#": the part after # must be a number`,
			`rl-next/a.md:3: malformed issue reference "fj#1, fj#2"`,
			`rl-next/a.md:3: malformed issue reference 1.5 (a YAML number)`,
			`rl-next/a.md:3: malformed issue reference empty (YAML null)`,
			`rl-next/a.md:4: malformed PR reference "pr#1": unknown tracker "pr" (known: fj, gh, lix, nix)`,
			`rl-next/a.md:4: malformed PR reference -3 (a YAML number)`,
			`rl-next/a.md:5: malformed CL reference "abc": a CL is a number`,
			`rl-next/a.md:5: malformed CL reference "1e3"`,
		}},
		{"empty issues value is a reference to None, as in Lix", fm("synopsis: S\nissues:", ""), false,
			[]string{"rl-next/a.md:3: malformed issue reference empty (YAML null)"}},
		{"unknown author with an authors file", fm("synopsis: S\ncredits:\n  - jade\n  - nobody", ""), true,
			[]string{`rl-next/a.md:5: credit "nobody" is not in the authors file change-authors.yml: add them there or fix the spelling`}},
		{"any author without an authors file", fm("synopsis: S\ncredits: [nobody]", ""), false, nil},
		{"credit that is not a name", fm("synopsis: S\ncredits: [[a]]", ""), false,
			[]string{"rl-next/a.md:3: credit a list is not a name"}},
		{"significance", fm("synopsis: S\nsignificance: major", ""), false,
			[]string{"rl-next/a.md:3: significance must be `significant` or left out, not \"major\""}},
		{"no front matter", "# Title\n\nText\n", false,
			[]string{`rl-next/a.md:1: no front matter: a fragment must start with a ` + "`---`" + ` line`}},
		{"front matter after text", "\n\nIntro\n---\nsynopsis: S\n---\n", false,
			[]string{`rl-next/a.md:3: no front matter`}},
		{"front matter not closed", "\n---\nsynopsis: S\n\nBody\n", false,
			[]string{"rl-next/a.md:2: the front matter opened by this `---` is not closed: add a `---` line after the YAML"}},
		{"front matter is not a mapping", fm("- synopsis: S", ""), false,
			[]string{"rl-next/a.md:2: the front matter is a list, not a mapping of keys"}},
		{"two YAML documents", fm("synopsis: S\n...\nx: 1", ""), false,
			[]string{"rl-next/a.md:4: front matter: YAML: did not find expected <document start>"}},
		{"duplicate key", fm("synopsis: A\nsynopsis: B", ""), false,
			[]string{"rl-next/a.md:3: warning: key synopsis is given twice; the last one is used"}},
		{"not UTF-8", "---\nsynopsis: caf\xe9\n---\n", false,
			[]string{"rl-next/a.md:2: not valid UTF-8 (byte 0xe9): save the file as UTF-8"}},
		{"undefined alias", fm("synopsis: S\ncredits: [*who]", ""), false,
			[]string{"rl-next/a.md:3: front matter: YAML: alias *who refers to no anchor &who"}},
		{"bad indentation", fm("synopsis: S\nissues:\n  - fj#1\n - fj#2", ""), false,
			[]string{"rl-next/a.md:5: front matter: YAML: did not find expected key"}},
		{"byte-order mark", "\ufeff---\nsynopsis: S\n---\n", false,
			[]string{"rl-next/a.md:1: the file starts with a byte-order mark"}},
		{"empty file", "\n \n", false, []string{"rl-next/a.md:1: empty file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, d := writeDir(t, map[string]string{"a.md": c.text})
			in := &Input{Dirs: []*Dir{d}, Settings: settings(t, gen2595[0], gen2595[1], gen2595[2])}
			if c.authors {
				in.Authors = testAuthorsFile(t)
			}
			r := Check(in)
			got := problemStrings(r)
			if len(got) != len(c.want) {
				t.Fatalf("problems:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(c.want), strings.Join(c.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, got[i], c.want[i])
				}
			}
			wantErrors := 0
			for _, w := range c.want {
				if !strings.Contains(w, ": warning: ") {
					wantErrors++
				}
			}
			if r.Errors != wantErrors || r.OK() != (wantErrors == 0) {
				t.Errorf("errors = %d, want %d", r.Errors, wantErrors)
			}
		})
	}
}

// TestCheckAllAtOnce: every problem of every fragment in one run, sorted
// by path and line, plus duplicate synopses across files, unreadable
// entries and the authors file's own problems.
func TestCheckAllAtOnce(t *testing.T) {
	dir, _ := writeDir(t, map[string]string{
		"a.md":       fm("synopsis: Same", ""),
		"b.md":       fm("synopsis: Same\ncategory: Nope", ""),
		"c.md":       "no front matter",
		".hidden.md": "ignored: not a fragment name",
		"README":     "ignored",
		"notes.txt":  "ignored",
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.md"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(dir, "dangling.md")); err != nil {
		t.Fatal(err)
	}
	d := ReadDir(testRoot, dir, "rl-next", true)
	a := ParseAuthors("authors.yml", []byte("jade:\n  gitlab: x\nbad: [1]\n"), []string{"forgejo", "github"})
	r := Check(&Input{Dirs: []*Dir{d}, Settings: settings(t, gen2595[0], gen2595[1], gen2595[2]), Authors: a})
	want := []string{
		`authors.yml:2: author jade: unknown field "gitlab" (known: display_name, forgejo, github)`,
		"authors.yml:3: author bad: expected a mapping of {display_name, forgejo, github}, found a list",
		"rl-next/b.md:2: duplicate synopsis: rl-next/a.md:2 has the same one",
		`rl-next/b.md:3: unknown category "Nope"`,
		"rl-next/c.md:1: no front matter",
		"rl-next/dangling.md:1: is a symbolic link that leads outside /",
		"rl-next/sub.md:1: is a directory, not a fragment",
	}
	got := problemStrings(r)
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s…", i, got[i], want[i])
		}
	}
	if r.Fragments != 5 || r.Errors != 7 {
		t.Errorf("fragments %d errors %d", r.Fragments, r.Errors)
	}
}

func TestCheckMissingDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	r := Check(&Input{Dirs: []*Dir{ReadDir(testRoot, missing, "nope", true)}, Settings: settings(t, gen2595[0], gen2595[1], gen2595[2])})
	if r.OK() || problemStrings(r)[0] != "nope: no such directory: there are no release-note fragments" {
		t.Errorf("required: %v", problemStrings(r))
	}
	r = Check(&Input{Dirs: []*Dir{ReadDir(testRoot, missing, "nope", false)}, Settings: settings(t, gen2595[0], gen2595[1], gen2595[2])})
	if !r.OK() || r.Warnings != 1 {
		t.Errorf("optional: %v", problemStrings(r))
	}
}

// TestCheckFixtures: the real Lix cases have no problems with their own
// settings, and 2.92's bare numbers are errors under 2.93's.
func TestCheckFixtures(t *testing.T) {
	gens := map[string][]string{"lix-2.92.0": gen2592, "lix-2.93.0": gen2593, "lix-2.95.0": gen2595}
	for name, gen := range gens {
		in := testAbs(t, filepath.Join("testdata", "fixtures", name, "input", "doc", "manual"))
		d := ReadDir(testRoot, filepath.Join(in, "rl-next"), "rl-next", true)
		s := settings(t, gen[0], gen[1], gen[2])
		a, err := LoadAuthors(testRoot, filepath.Join(in, "change-authors.yml"), "change-authors.yml", s.ProfileKinds())
		if err != nil {
			t.Fatal(err)
		}
		if r := Check(&Input{Dirs: []*Dir{d}, Settings: s, Authors: a}); r.Errors+r.Warnings != 0 || r.Fragments == 0 {
			t.Errorf("%s: %d fragments, problems:\n%s", name, r.Fragments, strings.Join(problemStrings(r), "\n"))
		}
	}
	d := ReadDir(testRoot, testAbs(t, filepath.Join("testdata", "fixtures", "lix-2.92.0", "input", "doc", "manual", "rl-next")), "rl-next", true)
	r := Check(&Input{Dirs: []*Dir{d}, Settings: settings(t, gen2593[0], gen2593[1], gen2593[2])})
	if r.OK() || !strings.Contains(problemStrings(r)[0], "is a bare number, and this project has no default tracker") {
		t.Errorf("2.92 fragments under 2.93 settings: %v", problemStrings(r))
	}
}

// testRoot confines the reads of tests that are not about confinement.
const testRoot = "/"

func testAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
