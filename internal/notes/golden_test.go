package notes_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/notes"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/testenv"
)

// fixturesDir is the copy of ../shared/fixtures/release-notes kept in
// testdata, so the tests do not depend on the shared tree. With
// RELENG_SHARED_FIXTURES=1 the shared tree (beside the repository) is used
// instead, to check the copy is current.
func fixturesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "fixtures")
	if os.Getenv("RELENG_SHARED_FIXTURES") == "1" {
		dir = filepath.Join("..", "..", "..", "shared", "fixtures", "release-notes")
	}
	if _, err := os.Stat(filepath.Join(dir, "lix-2.92.0", "input")); err != nil {
		t.Fatalf("release-notes fixtures not found at %s (%v): restore internal/notes/testdata/fixtures from ../shared/fixtures/release-notes", dir, err)
	}
	return dir
}

// caseNames are the real Lix cases, one per renderer generation.
var caseNames = []string{"lix-2.92.0", "lix-2.93.0", "lix-2.95.0"}

// lixConfig is ../shared/examples/lix.releng.toml with the [notes] settings
// of a case (its notes.toml) in place of the defaults.
func lixConfig(t *testing.T, notesTOML string) string {
	t.Helper()
	base, err := os.ReadFile(filepath.Join("testdata", "fixtures", "lix.releng.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(base)
	for _, line := range strings.Split(strings.TrimSpace(notesTOML), "\n") {
		key, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("notes.toml line %q is not key = value", line)
		}
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strings.TrimSpace(key)) + ` = .*$`)
		if !re.MatchString(cfg) {
			t.Fatalf("lix.releng.toml has no %s", key)
		}
		cfg = re.ReplaceAllLiteralString(cfg, strings.TrimSpace(line))
	}
	return cfg
}

// copyTree copies the files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fragmentsIn lists the fragment files of a directory, sorted.
func fragmentsIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if notes.IsFragmentName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// prepareCase sets up a git repository with a case's input, runs prepare
// with its date and returns the repository and result.
func prepareCase(t *testing.T, caseDir, notesTOML, date string) (*testenv.GitRepo, *notes.Result) {
	t.Helper()
	r := testenv.NewGitRepo(t)
	copyTree(t, filepath.Join(caseDir, "input"), r.Dir)
	r.Write("releng.toml", lixConfig(t, notesTOML))
	r.CommitAll("before the release notes")
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	res, err := notes.Prepare(context.Background(), p, notes.PrepareOptions{Date: date})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return r, res
}

// checkCommit checks that HEAD removes exactly the fragments, changes the
// expected files, keeps .gitkeep and leaves the tree clean.
func checkCommit(t *testing.T, r *testenv.GitRepo, version string, fragments []string, changed []string) {
	t.Helper()
	if msg := r.Git("log", "-1", "--format=%B"); msg != "release: release notes for "+version+"\n\nRelease produced with releng" {
		t.Errorf("commit message = %q", msg)
	}
	var want []string
	for _, f := range fragments {
		want = append(want, "D\tdoc/manual/rl-next/"+f)
	}
	want = append(want, changed...)
	sort.Strings(want)
	got := strings.Split(r.Git("show", "--no-renames", "--name-status", "--format=", "HEAD"), "\n")
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commit changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out := r.Git("ls-files", "doc/manual/rl-next"); out != "doc/manual/rl-next/.gitkeep" {
		t.Errorf("tracked in rl-next after prepare: %q, want only .gitkeep", out)
	}
	if st := r.Git("status", "--porcelain"); st != "" {
		t.Errorf("tree not clean after prepare:\n%s", st)
	}
}

// TestGoldenPrepare runs prepare on each real Lix case through real git
// and compares both files byte for byte.
func TestGoldenPrepare(t *testing.T) {
	dir := fixturesDir(t)
	for _, name := range caseNames {
		t.Run(name, func(t *testing.T) {
			c := filepath.Join(dir, name)
			date := strings.TrimSpace(readFile(t, filepath.Join(c, "date")))
			frags := fragmentsIn(t, filepath.Join(c, "input", "doc", "manual", "rl-next"))
			r, res := prepareCase(t, c, readFile(t, filepath.Join(c, "notes.toml")), date)
			major := strings.Join(strings.Split(strings.TrimPrefix(name, "lix-"), ".")[:2], ".")
			for _, f := range []string{"doc/manual/src/SUMMARY.md", "doc/manual/src/release-notes/rl-" + major + ".md"} {
				want := readFile(t, filepath.Join(c, "expected", f))
				got := readFile(t, filepath.Join(r.Dir, f))
				if got != want {
					t.Errorf("%s differs from the expected file:\n%s", f, firstDiff(got, want))
				}
			}
			checkCommit(t, r, res.Version, frags, []string{"M\tdoc/manual/src/SUMMARY.md", "A\tdoc/manual/src/release-notes/rl-" + major + ".md"})
			if len(res.Removed) != len(frags) || res.Commit == "" {
				t.Errorf("result = %+v", res)
			}
		})
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return strings.Join([]string{
				"line " + strconv.Itoa(i+1) + ":",
				"  got:  " + quote(gl, i < len(g)),
				"  want: " + quote(wl, i < len(w)),
			}, "\n")
		}
	}
	if !bytes.Equal([]byte(got), []byte(want)) {
		return "texts differ in line endings"
	}
	return ""
}

func quote(s string, present bool) string {
	if !present {
		return "(end of file)"
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\t", `\t`), "\r", `\r`) + "⏎"
}

// TestGoldenPointRelease prepares 2.92.1 on top of the 2.92.0 output
// (testdata/pointrelease/README.md): the major header stays, the new section
// goes above the old one, SUMMARY.md is not touched.
func TestGoldenPointRelease(t *testing.T) {
	c := filepath.Join("testdata", "pointrelease")
	frags := fragmentsIn(t, filepath.Join(c, "input", "doc", "manual", "rl-next"))
	r, res := prepareCase(t, c, readFile(t, filepath.Join(c, "notes.toml")), strings.TrimSpace(readFile(t, filepath.Join(c, "date"))))
	for _, f := range []string{"doc/manual/src/SUMMARY.md", "doc/manual/src/release-notes/rl-2.92.md"} {
		want := readFile(t, filepath.Join(c, "expected", f))
		got := readFile(t, filepath.Join(r.Dir, f))
		if got != want {
			t.Errorf("%s differs from the expected file:\n%s", f, firstDiff(got, want))
		}
	}
	checkCommit(t, r, "2.92.1", frags, []string{"M\tdoc/manual/src/release-notes/rl-2.92.md"})
	if res.Summary != "" {
		t.Errorf("summary updated for a point release: %q", res.Summary)
	}
}

// TestFixturesCopyCurrent: the copy in testdata/fixtures is the shared
// fixtures tree byte for byte, when that tree is beside the repository.
func TestFixturesCopyCurrent(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "fixtures", "release-notes")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("no shared fixtures at %s", shared)
	}
	err := filepath.WalkDir(shared, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(shared, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join("testdata", "fixtures", rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/fixtures/%s differs from %s: copy it again", rel, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
