package notes

import (
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/config"
)

// settings returns the Lix defaults with the three generation settings.
func settings(t testing.TB, layout, defaultTracker, linkText string) *Settings {
	t.Helper()
	c := config.Defaults("lix")
	c.Notes.Layout, c.Notes.DefaultTracker, c.Notes.LinkText = layout, &defaultTracker, linkText
	s, err := NewSettings(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	gen2592 = []string{LayoutCompact, "nix", LinkTextAsWritten} // Lix 2.91–2.92
	gen2593 = []string{LayoutSpaced, "", LinkTextAsWritten}     // Lix 2.93–2.94
	gen2595 = []string{LayoutSpaced, "lix", LinkTextTracker}    // Lix 2.95 on
)

const testAuthors = `
jade:
  forgejo: jade
  github: lf-
horrors:
  display_name: eldritch horrors
  github: pennae
nohub:
  display_name: No Hub
plain: {}
empty:
"1234":
  github: numeric
blankname:
  display_name: ""
  forgejo: ""
  github: bn
`

func testAuthorsFile(t testing.TB) *Authors {
	t.Helper()
	a := ParseAuthors("change-authors.yml", []byte(testAuthors), []string{"forgejo", "github"})
	if len(a.Problems) > 0 {
		t.Fatalf("authors: %v", a.Problems)
	}
	return a
}

// fm is a fragment file: front matter lines, then the body.
func fm(front, body string) string { return "---\n" + front + "\n---\n" + body }

type file struct{ name, text string }

func renderFiles(t *testing.T, s *Settings, a *Authors, files ...file) (string, *Report, error) {
	t.Helper()
	d := &Dir{Path: "rl-next"}
	for _, f := range files {
		d.Fragments = append(d.Fragments, ParseFragment("rl-next/"+f.name, []byte(f.text)))
	}
	return Render(&Input{Dirs: []*Dir{d}, Settings: s, Authors: a})
}

// TestRenderRules covers every rendering rule of SPEC §4.2, one case each,
// with the exact expected text.
func TestRenderRules(t *testing.T) {
	const (
		fjIssue = "https://git.lix.systems/lix-project/lix/issues/"
		fjPR    = "https://git.lix.systems/lix-project/lix/pulls/"
		ghIssue = "https://github.com/NixOS/nix/issues/"
		ghPR    = "https://github.com/NixOS/nix/pull/"
		cl      = "https://gerrit.lix.systems/c/lix/+/"
	)
	for _, c := range []struct {
		name    string
		gen     []string
		authors bool
		files   []file
		want    string
	}{
		{
			name: "spaced: categories in configured order, entries by name byte order",
			gen:  gen2595,
			files: []file{
				{"b.md", fm("synopsis: b\ncategory: Fixes", "B")},
				{"a.md", fm("synopsis: a\ncategory: Fixes", "A")},
				{"Z.md", fm("synopsis: Z\ncategory: Fixes", "Z")},
				{"f.md", fm("synopsis: f\ncategory: Features", "F")},
				{"m.md", fm("synopsis: m", "M")},
			},
			want: "## Features\n\n- f\n\n  F\n\n\n" +
				"## Fixes\n\n- Z\n\n  Z\n\n- a\n\n  A\n\n- b\n\n  B\n\n\n" +
				"## Miscellany\n\n- m\n\n  M\n\n\n",
		},
		{
			name: "compact: a newline before each category, nothing between entries",
			gen:  gen2592,
			files: []file{
				{"b.md", fm("synopsis: b\ncategory: Fixes", "B")},
				{"a.md", fm("synopsis: a\ncategory: Fixes", "A\n\nA2")},
				{"f.md", fm("synopsis: f\ncategory: Features", "F")},
			},
			want: "\n## Features\n- f\n\n  F\n" +
				"\n## Fixes\n- a\n\n  A\n\n  A2\n- b\n\n  B\n",
		},
		{
			name: "significant first, then by name; significance: ~ is absent",
			gen:  gen2595,
			files: []file{
				{"a.md", fm("synopsis: a\nsignificance: ~", "A")},
				{"z.md", fm("synopsis: z\nsignificance: significant", "Z")},
				{"y.md", fm("synopsis: y\nsignificance: significant", "Y")},
			},
			want: "## Miscellany\n\n- y\n\n  Y\n\n- z\n\n  Z\n\n- a\n\n  A\n\n\n",
		},
		{
			name:  "links as written (2.91–2.92): bare number → nix, aliases and names kept, issues then PRs then CLs",
			gen:   gen2592,
			files: []file{{"a.md", fm("synopsis: S\ncls: [12, '0034']\nprs: [gh#5, 6, fj#7]\nissues: [fj#1, 2, nix#3, lix#4, '0012']", "")}},
			want: "\n## Miscellany\n- S [fj#1](" + fjIssue + "1) [#2](" + ghIssue + "2) [nix#3](" + ghIssue + "3) [lix#4](" + fjIssue + "4) [#0012](" + ghIssue + "12)" +
				" [gh#5](" + ghPR + "5) [#6](" + ghPR + "6) [fj#7](" + fjPR + "7)" +
				" [cl/12](" + cl + "12) [cl/0034](" + cl + "0034)\n\n\n",
		},
		{
			name:  "links by tracker name (2.95 on): aliases and bare numbers → lix, gh → nix",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: S\nissues: [fj#1, 2, gh#3, nix#04, '0012']\nprs: [7, gh#8]\ncls: 9", "")}},
			want: "## Miscellany\n\n- S [lix#1](" + fjIssue + "1) [lix#2](" + fjIssue + "2) [nix#3](" + ghIssue + "3) [nix#4](" + ghIssue + "4) [lix#12](" + fjIssue + "12)" +
				" [lix#7](" + fjPR + "7) [nix#8](" + ghPR + "8) [cl/9](" + cl + "9)\n\n\n\n\n",
		},
		{
			name:  "as written without default tracker (2.93–2.94)",
			gen:   gen2593,
			files: []file{{"a.md", fm("synopsis: S\nissues: [nix#9142, fj#667, gh#1]\nprs: [gh#10299]", "Body")}},
			want:  "## Miscellany\n\n- S [nix#9142](" + ghIssue + "9142) [fj#667](" + fjIssue + "667) [gh#1](" + ghIssue + "1) [gh#10299](" + ghPR + "10299)\n\n  Body\n\n\n",
		},
		{
			name:  "YAML 1.1 numbers: 010 is 8, 0x10 is 16, 1_000 is 1000",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: S\nissues: [010, 0x10, 1_000]\ncls: [010]", "")}},
			want:  "## Miscellany\n\n- S [lix#8](" + fjIssue + "8) [lix#16](" + fjIssue + "16) [lix#1000](" + fjIssue + "1000) [cl/8](" + cl + "8)\n\n\n\n\n",
		},
		{
			name:  "empty body gives just the newline (spaced)",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: S", "  \n\n  ")}},
			want:  "## Miscellany\n\n- S\n\n\n\n\n",
		},
		{
			name:  "empty body gives just the newline (compact)",
			gen:   gen2592,
			files: []file{{"a.md", fm("synopsis: S", "")}, {"b.md", fm("synopsis: T", "x")}},
			want:  "\n## Miscellany\n- S\n\n\n- T\n\n  x\n",
		},
		{
			name:  "whitespace-only lines are left as they are, others indented",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: S", "\n\n  first\n\n   \n\t\n  - item\n    more\n\u00a0\nlast  \n\n")}},
			want:  "## Miscellany\n\n- S\n\n  first\n\n   \n\t\n    - item\n      more\n\u00a0\n  last\n\n\n",
		},
		{
			name:  "line breaks as Python sees them: \\r\\n kept, \\f and U+2028 split lines",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: S", "a\r\nb\fc\u2028d")}},
			want:  "## Miscellany\n\n- S\n\n  a\r\n  b\f  c\u2028  d\n\n\n",
		},
		{
			name:  "empty synopsis, spaced: `- ` and the body on the same line",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: ''", "Body\nmore")}},
			want:  "## Miscellany\n\n-   Body\n  more\n\n\n",
		},
		{
			name:  "empty synopsis, compact: no header line",
			gen:   gen2592,
			files: []file{{"a.md", fm("synopsis: ''", "Body")}},
			want:  "\n## Miscellany\n  Body\n",
		},
		{
			name:  "empty synopsis with links: a space then the links",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: ''\ncls: [1]", "")}},
			want:  "## Miscellany\n\n-  [cl/1](" + cl + "1)\n\n\n\n\n",
		},
		{
			name:    "credits: one name, with forgejo profile first",
			gen:     gen2595,
			authors: true,
			files:   []file{{"a.md", fm("synopsis: S\ncredits: jade", "B")}},
			want:    "## Miscellany\n\n- S\n\n  B\n\n  Many thanks to [jade](https://git.lix.systems/jade) for this.\n\n\n",
		},
		{
			name:    "credits: two names, display name with github profile",
			gen:     gen2595,
			authors: true,
			files:   []file{{"a.md", fm("synopsis: S\ncredits: [horrors, jade]", "B")}},
			want:    "## Miscellany\n\n- S\n\n  B\n\n  Many thanks to [eldritch horrors](https://github.com/pennae) and [jade](https://git.lix.systems/jade) for this.\n\n\n",
		},
		{
			name:    "credits: three names (Oxford comma), authors without profiles",
			gen:     gen2592,
			authors: true,
			files:   []file{{"a.md", fm("synopsis: S\ncredits: [nohub, plain, empty]", "B")}},
			want:    "\n## Miscellany\n- S\n\n  B\n\n  Many thanks to No Hub, plain, and empty for this.\n",
		},
		{
			name:    "credits: four names; empty display name and profile fall back",
			gen:     gen2595,
			authors: true,
			files:   []file{{"a.md", fm("synopsis: S\ncredits: [jade, blankname, '1234', nohub]", "")}},
			want:    "## Miscellany\n\n- S\n\n\n\n  Many thanks to [jade](https://git.lix.systems/jade), [blankname](https://github.com/bn), [1234](https://github.com/numeric), and No Hub for this.\n\n\n",
		},
		{
			name:  "credits without an authors file: names as written",
			gen:   gen2595,
			files: []file{{"a.md", fm("synopsis: S\ncredits: [someone, jade]", "B")}},
			want:  "## Miscellany\n\n- S\n\n  B\n\n  Many thanks to someone and jade for this.\n\n\n",
		},
		{
			name:    "credits: [] gives no credits line",
			gen:     gen2595,
			authors: true,
			files:   []file{{"a.md", fm("synopsis: S\ncredits: []", "B")}},
			want:    "## Miscellany\n\n- S\n\n  B\n\n\n",
		},
		{
			name:  "no fragments, no output",
			gen:   gen2595,
			files: nil,
			want:  "",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			var a *Authors
			if c.authors {
				a = testAuthorsFile(t)
			}
			got, rep, err := renderFiles(t, settings(t, c.gen[0], c.gen[1], c.gen[2]), a, c.files...)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if rep.Errors != 0 {
				t.Fatalf("problems: %v", rep.Problems)
			}
			if got != c.want {
				t.Errorf("got:\n%q\nwant:\n%q", got, c.want)
			}
		})
	}
}

// TestRenderErrors: what Lix's renderer raises on is an error naming the
// fragment, and nothing is rendered.
func TestRenderErrors(t *testing.T) {
	for _, c := range []struct {
		name, text, want string
		gen              []string
		authors          bool
	}{
		{"bare number without default tracker", fm("synopsis: S\nissues: [12]", ""), "rl-next/a.md:3: issue reference 12 (a YAML number) is a bare number, and this project has no default tracker", gen2593, false},
		{"unknown tracker", fm("synopsis: S\nprs: [gl#1]", ""), `rl-next/a.md:3: malformed PR reference "gl#1": unknown tracker "gl"`, gen2595, false},
		{"unknown author", fm("synopsis: S\ncredits: [jdae]", ""), `rl-next/a.md:3: credit "jdae" is not in the authors file change-authors.yml (did you mean "jade"?)`, gen2595, true},
		{"int credit is not the str key", fm("synopsis: S\ncredits: [1234]", ""), `rl-next/a.md:3: credit "1234" is not in the authors file`, gen2595, true},
		{"significance", fm("synopsis: S\nsignificance: yes", ""), "rl-next/a.md:3: significance must be `significant` or left out, not yes (a YAML boolean, True)", gen2595, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var a *Authors
			if c.authors {
				a = testAuthorsFile(t)
			}
			got, _, err := renderFiles(t, settings(t, c.gen[0], c.gen[1], c.gen[2]), a, file{"a.md", c.text})
			if err == nil || got != "" {
				t.Fatalf("rendered %q, err %v; want an error", got, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
}

// TestRenderSeveralDirs: each directory is rendered in turn.
func TestRenderSeveralDirs(t *testing.T) {
	s := settings(t, gen2595[0], gen2595[1], gen2595[2])
	d1 := &Dir{Path: "one", Fragments: []*Fragment{ParseFragment("one/a.md", []byte(fm("synopsis: A", "")))}}
	d2 := &Dir{Path: "two", Fragments: []*Fragment{ParseFragment("two/b.md", []byte(fm("synopsis: B", "")))}}
	got, _, err := Render(&Input{Dirs: []*Dir{d1, d2}, Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	if want := "## Miscellany\n\n- A\n\n\n\n\n## Miscellany\n\n- B\n\n\n\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPluralList(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, ""}, {[]string{"A"}, "A"}, {[]string{"A", "B"}, "A and B"},
		{[]string{"A", "B", "C"}, "A, B, and C"}, {[]string{"A", "B", "C", "D"}, "A, B, C, and D"},
	} {
		if got := pluralList(c.in); got != c.want {
			t.Errorf("pluralList(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
