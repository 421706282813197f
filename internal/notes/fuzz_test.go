package notes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are the fixture fragments, the differential corpus as front
// matter and the bad inputs of the tests; testdata/fuzz keeps what the
// fuzzer found.
func fuzzSeeds(f *testing.F) {
	paths, _ := filepath.Glob("testdata/fixtures/*/input/doc/manual/rl-next/*.md")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, doc := range yamlCorpus {
		f.Add([]byte(fm(doc, "Body\n\n  more\n")))
	}
	for _, s := range []string{
		"", "---", "---\n---", "---\n\t- x\n---", "---\nsynopsis: x\n", "---\nsynopsis: 42\n---\n",
		"\xef\xbb\xbf---\nsynopsis: x\n---\n", "---\nsynopsis: caf\xe9\n---\n", "---\na: &a [*a]\n---\n",
		"---\nx: &x {a: 1}\ny: {<<: [*x, *x]}\n---\n", "---\nsynopsis: s\nissues: [fj#1, 2, gh#03]\ncredits: [jade, x]\n---\n\u2028\r\n\f",
	} {
		f.Add([]byte(s))
	}
}

// FuzzFragment: parsing, checking and rendering arbitrary bytes, in every
// renderer generation, with and without an authors file, never panics or
// hangs, and renders only valid UTF-8.
func FuzzFragment(f *testing.F) {
	fuzzSeeds(f)
	authors := testAuthorsFile(f)
	gens := [][]string{gen2592, gen2593, gen2595}
	all := make([]*Settings, len(gens))
	for i, g := range gens {
		all[i] = settings(f, g[0], g[1], g[2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frag := ParseFragment("rl-next/fuzz.md", data)
		for _, p := range frag.Problems {
			if p.Line < 1 || p.Path != "rl-next/fuzz.md" || p.Message == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
		for _, s := range all {
			for _, a := range []*Authors{nil, authors} {
				in := &Input{Dirs: []*Dir{{Path: "rl-next", Fragments: []*Fragment{frag, frag}}}, Settings: s, Authors: a}
				out, rep, err := Render(in)
				if err == nil && !utf8.ValidString(out) {
					t.Fatalf("rendered invalid UTF-8: %q", out)
				}
				if (err == nil) != rep.OK() {
					t.Fatalf("render error %v but report OK=%v", err, rep.OK())
				}
				if err == nil && frag.HasSynopsis && !pyIsBlank(frag.Synopsis) {
					t.Fatalf("a synopsis twice is a duplicate, but rendered")
				}
			}
		}
	})
}

// FuzzAuthors: arbitrary authors files never panic.
func FuzzAuthors(f *testing.F) {
	f.Add([]byte(testAuthors))
	paths, _ := filepath.Glob("testdata/fixtures/*/input/doc/manual/change-authors.yml")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, doc := range yamlCorpus {
		f.Add([]byte(doc))
	}
	s := settings(f, gen2595[0], gen2595[1], gen2595[2])
	f.Fuzz(func(t *testing.T, data []byte) {
		a := ParseAuthors("authors.yml", data, []string{"forgejo", "github"})
		for _, k := range a.keys {
			au, ok := a.Lookup(k)
			if ok && !strings.Contains(s.showAuthor(au), au.DisplayName) {
				t.Fatalf("author %q shown as %q", k, s.showAuthor(au))
			}
		}
	})
}

// Lookup returns the author named by the string name (FuzzAuthors looks up
// every key). As in Python, the key must be equal in type and value:
// `1234` and `"1234"` are different keys.
func (a *Authors) Lookup(name string) (*Author, bool) {
	return a.lookup(&yvalue{kind: yStr, s: name})
}
