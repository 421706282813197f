package notes

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCreateFragment(t *testing.T) {
	s := settings(t, gen2595[0], gen2595[1], gen2595[2])
	dir := filepath.Join(t.TempDir(), "rl-next") // created on demand
	o := NewOptions{Name: "fix-thing", Synopsis: `Fix "things": yes, #1 & \ more`, Category: "Fixes",
		Issues: []string{"fj#12", "34", "0056"}, PRs: []string{"gh#7"}, CLs: []string{"1234"}, Credits: []string{"jade", "horrors"}, Significant: true}
	path, warnings, err := CreateFragment(dir, o, s, testAuthorsFile(t))
	if err != nil || len(warnings) != 0 {
		t.Fatalf("create: %v %v", err, warnings)
	}
	if path != filepath.Join(dir, "fix-thing.md") {
		t.Errorf("path = %s", path)
	}
	d := ReadDir(testRoot, dir, "rl-next", true)
	if r := Check(&Input{Dirs: []*Dir{d}, Settings: s, Authors: testAuthorsFile(t)}); !r.OK() || r.Warnings != 0 {
		t.Fatalf("notes check rejects the new fragment: %v", problemStrings(r))
	}
	f := d.Fragments[0]
	if f.Synopsis != o.Synopsis || !f.Significant || f.category.s != "Fixes" || f.Body != "" {
		t.Errorf("fragment = %+v", f)
	}
	var issues []string
	for _, v := range f.issues {
		issues = append(issues, v.s)
	}
	if !reflect.DeepEqual(issues, []string{"fj#12", "34", "0056"}) {
		t.Errorf("issues read back as %q", issues)
	}

	// Never overwritten.
	before, _ := os.ReadFile(path)
	_, _, err = CreateFragment(dir, NewOptions{Name: "fix-thing.md", Synopsis: "Other"}, s, nil)
	if !errors.Is(err, ErrExists) {
		t.Errorf("overwrite: err = %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("file changed")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// TestCreateFragmentSynopsisRoundTrip: whatever the synopsis, the file
// reads back with exactly that text.
func TestCreateFragmentSynopsisRoundTrip(t *testing.T) {
	s := settings(t, gen2595[0], gen2595[1], gen2595[2])
	for i, syn := range []string{"yes", "123", "010", "2025-01-01", "null", "~", "- dash", "#hash", "a: b", "'quoted'", `"dq"`, `back\slash`,
		"tab\there", "  spaces  ", "é ü ☃ 🎉", "\u2028sep", "ctrl\x01\x7f", "<<", "=", "!tag", "&anchor", "*alias", "[flow]", "{map}", "%", "@", "`"} {
		dir := t.TempDir()
		path, _, err := CreateFragment(dir, NewOptions{Name: "n" + strings.Repeat("x", i), Synopsis: syn}, s, nil)
		if err != nil {
			t.Errorf("%q: %v", syn, err)
			continue
		}
		data, _ := os.ReadFile(path)
		f := ParseFragment(path, data)
		if f.Synopsis != syn || f.hasErrors() {
			t.Errorf("%q read back as %q (%v)\n%s", syn, f.Synopsis, f.Problems, data)
		}
	}
}

func TestCreateFragmentRefuses(t *testing.T) {
	s := settings(t, gen2593[0], gen2593[1], gen2593[2])
	for _, c := range []struct {
		name string
		o    NewOptions
		want string
	}{
		{"path separator", NewOptions{Name: "../evil", Synopsis: "S"}, "contains a path separator"},
		{"subdirectory", NewOptions{Name: "a/b", Synopsis: "S"}, "contains a path separator"},
		{"backslash", NewOptions{Name: `a\b`, Synopsis: "S"}, "contains a path separator"},
		{"hidden", NewOptions{Name: ".hidden", Synopsis: "S"}, "starts with a dot"},
		{"empty", NewOptions{Name: ".md", Synopsis: "S"}, "is empty"},
		{"spaces", NewOptions{Name: "a b", Synopsis: "S"}, "use letters, digits"},
		{"multi-line synopsis", NewOptions{Name: "a", Synopsis: "a\nb"}, "must be one line"},
		{"unknown category", NewOptions{Name: "a", Synopsis: "S", Category: "Bugs"}, `unknown category "Bugs"`},
		{"bare number without default tracker", NewOptions{Name: "a", Synopsis: "S", Issues: []string{"12"}}, "is a bare number"},
		{"bad PR", NewOptions{Name: "a", Synopsis: "S", PRs: []string{"gl#1"}}, `unknown tracker "gl"`},
		{"bad CL", NewOptions{Name: "a", Synopsis: "S", CLs: []string{"I12ab"}}, "malformed CL reference"},
		{"unknown author", NewOptions{Name: "a", Synopsis: "S", Credits: []string{"jade", "nobody"}}, `credit "nobody" is not in the authors file`},
		{"blank reference", NewOptions{Name: "a", Synopsis: "S", Issues: []string{" "}}, "is not a valid reference"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := CreateFragment(dir, c.o, s, testAuthorsFile(t))
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want InvalidError containing %q", err, c.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("written: %v", ents)
			}
		})
	}
}

func TestNewFragmentText(t *testing.T) {
	got := NewFragmentText(NewOptions{Synopsis: "Fix it", Issues: []string{"fj#1", "2"}, CLs: []string{"3"}, Credits: []string{"jade", "Jo Doe"}}, "Miscellany")
	want := "---\nsynopsis: \"Fix it\"\nissues: [fj#1, 2]\ncls: [3]\ncategory: \"Miscellany\"\ncredits: [jade, \"Jo Doe\"]\n---\n\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
