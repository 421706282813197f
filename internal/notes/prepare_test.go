package notes_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/notes"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/testenv"
)

const (
	summaryPath = "doc/manual/src/SUMMARY.md"
	summaryText = "# Summary\n\n- [Release Notes](release-notes/release-notes.md)\n  - [Upcoming release](release-notes/rl-next.md)\n    <!-- RELENG-AUTO-INSERTION-MARKER (see releng/release_notes.py) -->\n  - [Lix 2.93 (2025-05-09)](release-notes/rl-2.93.md)\n"
	authorsText = "jade:\n  forgejo: jade\n"
	goodFrag    = "---\nsynopsis: Good change\ncategory: Fixes\ncls: [1]\ncredits: jade\n---\n\nIt works.\n"
)

func versionJSON(v, name string) string {
	return "{\n    \"version\": \"" + v + "\",\n    \"official_release\": false,\n    \"release_name\": \"" + name + "\"\n}\n"
}

// newLixRepo is a small Lix-like project at version v, committed.
func newLixRepo(t *testing.T, v string, fragments map[string]string) *testenv.GitRepo {
	t.Helper()
	r := testenv.NewGitRepo(t)
	r.Write("releng.toml", "name = \"lix\"\n")
	r.Write("version.json", versionJSON(v, "Kakigōri"))
	r.Write(summaryPath, summaryText)
	r.Write("doc/manual/change-authors.yml", authorsText)
	r.Write("doc/manual/rl-next/.gitkeep", "")
	for name, text := range fragments {
		r.Write("doc/manual/rl-next/"+name, text)
	}
	r.CommitAll("initial")
	return r
}

func prepare(t *testing.T, r *testenv.GitRepo, date string) (*notes.Result, error) {
	t.Helper()
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	return notes.Prepare(context.Background(), p, notes.PrepareOptions{Date: date})
}

// assertUntouched checks that HEAD is the initial commit and the tree is
// exactly as committed: nothing written, nothing staged, nothing removed.
func assertUntouched(t *testing.T, r *testenv.GitRepo, head string) {
	t.Helper()
	if h := r.Git("rev-parse", "HEAD"); h != head {
		t.Errorf("HEAD moved: %s", r.Git("log", "--oneline", "-3"))
	}
	if st := r.Git("status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("tree changed:\n%s", st)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "doc/manual/src/release-notes")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("release-notes directory was created")
	}
}

func TestPrepareRefusesDirtyTree(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag})
	head := r.Git("rev-parse", "HEAD")
	r.Write("version.json", versionJSON("2.95.0", "Changed"))
	_, err := prepare(t, r, "2026-03-13")
	var pe *notes.PrepareError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "uncommitted changes") || !strings.Contains(err.Error(), "version.json") {
		t.Fatalf("err = %v", err)
	}
	r.Git("checkout", "--", "version.json")
	assertUntouched(t, r, head)
}

// TestPrepareRefusesBadFragments: the mistakes a new user makes are all
// reported as path:line: message, and nothing is written.
func TestPrepareRefusesBadFragments(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{
		"good.md":     goodFrag,
		"tab.md":      "---\nsynopsis: Tabs\nissues:\n\t- fj#1\n---\n\nBody.\n",
		"unclosed.md": "---\nsynopsis: No end\ncategory: Fixes\n\nBody.\n",
		"number.md":   "---\nsynopsis: 2025\n---\n\nBody.\n",
		"credit.md":   "---\nsynopsis: Credit\ncredits: [jade, stranger]\n---\n\nBody.\n",
		"latin1.md":   "---\nsynopsis: Caf\xe9\n---\n\nBody.\n",
	})
	head := r.Git("rev-parse", "HEAD")
	_, err := prepare(t, r, "2026-03-13")
	var pe *notes.ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a ProblemsError", err)
	}
	want := []string{
		`doc/manual/rl-next/credit.md:3: credit "stranger" is not in the authors file doc/manual/change-authors.yml`,
		"doc/manual/rl-next/latin1.md:2: not valid UTF-8 (byte 0xe9)",
		"doc/manual/rl-next/number.md:2: synopsis is 2025 (a YAML number), not text",
		"doc/manual/rl-next/tab.md:4: front matter: YAML: found character that cannot start any token (this line starts with a tab",
		"doc/manual/rl-next/unclosed.md:1: the front matter opened by this `---` is not closed",
	}
	got := pe.Report.Problems
	if len(got) != len(want) {
		t.Fatalf("problems: %v", got)
	}
	for i, p := range got {
		if !strings.HasPrefix(p.String(), want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s…", i, p, want[i])
		}
	}
	assertUntouched(t, r, head)
}

func TestPrepareRefusesUntrackedFragment(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag})
	head := r.Git("rev-parse", "HEAD")
	r.Write("doc/manual/rl-next/new.md", strings.Replace(goodFrag, "Good change", "New change", 1))
	_, err := prepare(t, r, "2026-03-13")
	if err == nil || !strings.Contains(err.Error(), "not tracked by git") || !strings.Contains(err.Error(), "doc/manual/rl-next/new.md") {
		t.Fatalf("err = %v", err)
	}
	os.Remove(filepath.Join(r.Dir, "doc/manual/rl-next/new.md"))
	assertUntouched(t, r, head)
}

// TestPrepareNoFragments: warns, still writes the version header (as Lix
// 2.94.1 was released), and commits only the notes file.
func TestPrepareNoFragments(t *testing.T) {
	r := newLixRepo(t, "2.94.1", nil)
	r.Write("doc/manual/src/release-notes/rl-2.94.md", "# Lix 2.94 \"Kakigōri\" (2025-08-01)\n\n\n# Lix 2.94.0 (2025-08-01)\n## Fixes\n\n- Fixed\n\n  Body.\n")
	r.CommitAll("2.94.0 notes")
	res, err := prepare(t, r, "2025-09-01")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Lix 2.94 \"Kakigōri\" (2025-08-01)\n# Lix 2.94.1 (2025-09-01)\n\n\n\n\n# Lix 2.94.0 (2025-08-01)\n## Fixes\n\n- Fixed\n\n  Body.\n"
	if got := readFile(t, filepath.Join(r.Dir, "doc/manual/src/release-notes/rl-2.94.md")); got != want {
		t.Errorf("notes:\n%q\nwant\n%q", got, want)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "no release-note fragments") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if got := r.Git("show", "--name-status", "--format=", "HEAD"); got != "M\tdoc/manual/src/release-notes/rl-2.94.md" {
		t.Errorf("commit: %s", got)
	}
	if got := readFile(t, filepath.Join(r.Dir, summaryPath)); got != summaryText {
		t.Errorf("SUMMARY changed for a point release")
	}
}

// TestPrepareMissingFragmentsDir: a project without the directory gets a
// warning and the headers.
func TestPrepareMissingFragmentsDir(t *testing.T) {
	r := newLixRepo(t, "2.95.0", nil)
	r.Git("rm", "-q", "doc/manual/rl-next/.gitkeep")
	r.Git("commit", "-q", "-m", "no fragments dir")
	res, err := prepare(t, r, "2026-03-13")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(r.Dir, "doc/manual/src/release-notes/rl-2.95.md")), "# Lix 2.95 \"Kakigōri\" (2026-03-13)\n\n\n# Lix 2.95.0 (2026-03-13)\n"; got != want {
		t.Errorf("notes %q, want %q", got, want)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "no such directory") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if !strings.Contains(readFile(t, filepath.Join(r.Dir, summaryPath)), "\n  - [Lix 2.95 (2026-03-13)](release-notes/rl-2.95.md)\n") {
		t.Errorf("SUMMARY not linked")
	}
}

// TestPrepareKeepsOtherFiles: only `[!.]*.md` files are fragments; the
// rest of the directory stays tracked.
func TestPrepareKeepsOtherFiles(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag, ".draft.md": "not a fragment", "notes.txt": "kept", "README": "kept"})
	if _, err := prepare(t, r, "2026-03-13"); err != nil {
		t.Fatal(err)
	}
	if got := r.Git("ls-files", "doc/manual/rl-next"); got != "doc/manual/rl-next/.draft.md\ndoc/manual/rl-next/.gitkeep\ndoc/manual/rl-next/README\ndoc/manual/rl-next/notes.txt" {
		t.Errorf("left in rl-next: %q", got)
	}
}

func TestPrepareOnlyOnce(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag})
	if _, err := prepare(t, r, "2026-03-13"); err != nil {
		t.Fatal(err)
	}
	head := r.Git("rev-parse", "HEAD")
	_, err := prepare(t, r, "2026-03-14")
	if err == nil || !strings.Contains(err.Error(), "already has the notes of 2.95.0") {
		t.Fatalf("second prepare: %v", err)
	}
	if r.Git("rev-parse", "HEAD") != head || r.Git("status", "--porcelain") != "" {
		t.Errorf("second prepare changed something")
	}
}

func TestPrepareRefusesWithoutMarker(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag})
	r.Write(summaryPath, "# Summary\n\n- [Release Notes](release-notes/release-notes.md)\n")
	r.CommitAll("no marker")
	head := r.Git("rev-parse", "HEAD")
	_, err := prepare(t, r, "2026-03-13")
	if err == nil || !strings.Contains(err.Error(), "has no line containing the marker") {
		t.Fatalf("err = %v", err)
	}
	assertUntouched(t, r, head)
}

// TestPrepareRollsBack: when git refuses the commit (a failing hook),
// the files, index and fragments are as before.
func TestPrepareRollsBack(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag})
	head := r.Git("rev-parse", "HEAD")
	hook := filepath.Join(r.Dir, ".git", "hooks", "pre-commit")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := prepare(t, r, "2026-03-13")
	if err == nil || !strings.Contains(err.Error(), "hook says no") || !strings.Contains(err.Error(), "nothing was committed") {
		t.Fatalf("err = %v", err)
	}
	assertUntouched(t, r, head)
}

// TestPrepareSummaryEntries: the entry goes after every marker line, with
// that line's indentation; CRLF is read as Python's text mode reads it,
// and the file ends with exactly one newline.
func TestPrepareSummaryEntries(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag})
	r.Write(summaryPath, "# Summary\r\n    <!-- RELENG-AUTO-INSERTION-MARKER -->\r\n\t  <!-- RELENG-AUTO-INSERTION-MARKER again\r\n\r\n\r\n")
	r.CommitAll("two markers")
	if _, err := prepare(t, r, "2026-03-13"); err != nil {
		t.Fatal(err)
	}
	want := "# Summary\n    <!-- RELENG-AUTO-INSERTION-MARKER -->\n  - [Lix 2.95 (2026-03-13)](release-notes/rl-2.95.md)\n" +
		"\t  <!-- RELENG-AUTO-INSERTION-MARKER again\n\t- [Lix 2.95 (2026-03-13)](release-notes/rl-2.95.md)\n"
	if got := readFile(t, filepath.Join(r.Dir, summaryPath)); got != want {
		t.Errorf("SUMMARY:\n%q\nwant\n%q", got, want)
	}
}

func TestPrepareBadDate(t *testing.T) {
	r := newLixRepo(t, "2.95.0", map[string]string{"good.md": goodFrag})
	head := r.Git("rev-parse", "HEAD")
	for _, d := range []string{"2026-3-13", "2026-02-30", "13/03/2026", "2026-03-13; rm"} {
		if _, err := prepare(t, r, d); err == nil {
			t.Errorf("date %q accepted", d)
		}
	}
	assertUntouched(t, r, head)
}
