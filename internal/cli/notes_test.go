package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

const (
	cliGoodFrag = "---\nsynopsis: Good change\ncategory: Fixes\nissues: [fj#1]\ncredits: jade\n---\n\nIt works.\n"
	cliAuthors  = "jade:\n  forgejo: jade\n"
)

// notesTree writes files under a new directory (no releng.toml, no git).
func notesTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lix")
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestNotesCheckWithoutConfig(t *testing.T) {
	dir := notesTree(t, map[string]string{
		"doc/manual/rl-next/good.md":        cliGoodFrag,
		"doc/manual/rl-next/empty.md":       "---\nsynopsis: ''\n---\n",
		"doc/manual/rl-next/.gitkeep":       "",
		"doc/manual/change-authors.yml":     cliAuthors,
		"elsewhere/other.md":                cliGoodFrag,
		"elsewhere/bad.md":                  "---\nsynopsis: x\ncredits: [nobody]\n---\n",
		"doc/manual/rl-next/not-a-frag.txt": "x",
	})
	out, errOut, code := run(t, "-C", dir, "notes", "check")
	if code != 0 || out != "doc/manual/rl-next/empty.md:2: warning: the synopsis is empty: the entry renders without a title\n2 fragments checked: no errors, 1 warning\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// DIR arguments are relative to -C; the authors file of the defaults applies.
	out, errOut, code = run(t, "-C", dir, "notes", "check", "elsewhere")
	if code != 1 || out != "elsewhere/bad.md:3: credit \"nobody\" is not in the authors file doc/manual/change-authors.yml: add them there or fix the spelling\n" ||
		errOut != "releng: notes check: 1 error in 2 fragments\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// --authors replaces the configured file.
	alt := filepath.Join(dir, "alt.yml")
	os.WriteFile(alt, []byte("nobody: {}\njade: {}\n"), 0o644)
	if out, errOut, code := run(t, "-C", dir, "notes", "check", "--authors", alt, "elsewhere"); code != 0 {
		t.Errorf("--authors: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := run(t, "-C", dir, "notes", "check", "--authors", "missing.yml"); code != 2 || !strings.Contains(errOut, "--authors missing.yml") {
		t.Errorf("missing --authors: exit %d %s", code, errOut)
	}
	if _, _, code := run(t, "-C", dir, "notes", "check", "no-such-dir"); code != 1 {
		t.Errorf("missing DIR: exit %d", code)
	}
}

// TestNotesCheckNewUserMistakes: what a new user gets wrong is reported
// all at once as path:line: message, exit 1.
func TestNotesCheckNewUserMistakes(t *testing.T) {
	dir := notesTree(t, map[string]string{
		"doc/manual/change-authors.yml":  cliAuthors,
		"doc/manual/rl-next/tab.md":      "---\nsynopsis: Tabs\nissues:\n\t- fj#1\n---\n",
		"doc/manual/rl-next/unclosed.md": "---\nsynopsis: No end\n\nBody\n",
		"doc/manual/rl-next/number.md":   "---\nsynopsis: 12\n---\n",
		"doc/manual/rl-next/credit.md":   "---\nsynopsis: Credit\ncredits: [jade, stranger]\n---\n",
		"doc/manual/rl-next/latin1.md":   "---\nsynopsis: Caf\xe9\n---\n",
	})
	out, errOut, code := run(t, "-C", dir, "notes", "check")
	want := []string{
		`doc/manual/rl-next/credit.md:3: credit "stranger" is not in the authors file doc/manual/change-authors.yml: add them there or fix the spelling`,
		"doc/manual/rl-next/latin1.md:2: not valid UTF-8 (byte 0xe9): save the file as UTF-8",
		"doc/manual/rl-next/number.md:2: synopsis is 12 (a YAML number), not text: quote it, e.g. `synopsis: \"12\"`",
		"doc/manual/rl-next/tab.md:4: front matter: YAML: found character that cannot start any token (this line starts with a tab: YAML indents with spaces only)",
		"doc/manual/rl-next/unclosed.md:1: the front matter opened by this `---` is not closed: add a `---` line after the YAML (and before the text)",
	}
	if code != 1 || out != strings.Join(want, "\n")+"\n" || errOut != "releng: notes check: 5 errors in 5 fragments\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// render refuses the same way and prints nothing on stdout.
	out, errOut, code = run(t, "-C", dir, "notes", "render")
	if code != 1 || out != "" || !strings.Contains(errOut, want[0]) || !strings.Contains(errOut, "nothing rendered") {
		t.Errorf("render: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestNotesCheckJSON(t *testing.T) {
	dir := notesTree(t, map[string]string{"doc/manual/rl-next/a.md": "---\nsynopsis: S\ncategory: Nope\n---\n"})
	out, _, code := run(t, "-C", dir, "--json", "notes", "check")
	var rep struct {
		Fragments, Errors, Warnings int
		Problems                    []struct {
			Path, Severity, Message string
			Line                    int
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if code != 1 || rep.Fragments != 1 || rep.Errors != 1 || len(rep.Problems) != 1 ||
		rep.Problems[0].Path != "doc/manual/rl-next/a.md" || rep.Problems[0].Line != 3 || rep.Problems[0].Severity != "error" {
		t.Errorf("exit %d: %+v", code, rep)
	}
}

func TestNotesRender(t *testing.T) {
	dir := notesTree(t, map[string]string{
		"doc/manual/rl-next/good.md":    cliGoodFrag,
		"doc/manual/change-authors.yml": cliAuthors,
	})
	want := "## Fixes\n\n- Good change [lix#1](https://git.lix.systems/lix-project/lix/issues/1)\n\n  It works.\n\n  Many thanks to [jade](https://git.lix.systems/jade) for this.\n\n\n"
	out, errOut, code := run(t, "-C", dir, "notes", "render")
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d\nstdout:\n%q\nstderr:\n%s", code, out, errOut)
	}
	// With a releng.toml, its [notes] settings apply.
	os.WriteFile(filepath.Join(dir, "releng.toml"), []byte("name = \"lix\"\n[notes]\nlayout = \"compact\"\ndefault_tracker = \"nix\"\nlink_text = \"as-written\"\n"), 0o644)
	want = "\n## Fixes\n- Good change [fj#1](https://git.lix.systems/lix-project/lix/issues/1)\n\n  It works.\n\n  Many thanks to [jade](https://git.lix.systems/jade) for this.\n"
	if out, errOut, code := run(t, "-C", dir, "notes", "render"); code != 0 || out != want {
		t.Errorf("compact: exit %d\nstdout:\n%q\nstderr:\n%s", code, out, errOut)
	}
	// A broken releng.toml is a configuration error.
	os.WriteFile(filepath.Join(dir, "releng.toml"), []byte("name = \"lix\"\n[notes]\nlayout = \"dense\"\n"), 0o644)
	if _, errOut, code := run(t, "-C", dir, "notes", "render"); code != 2 || !strings.Contains(errOut, "notes.layout") {
		t.Errorf("bad config: exit %d %s", code, errOut)
	}
}

func TestNotesNew(t *testing.T) {
	dir := notesTree(t, map[string]string{"doc/manual/change-authors.yml": cliAuthors})
	out, errOut, code := run(t, "-C", dir, "notes", "new", "fix-it", "--synopsis", "Fix it", "--category", "Fixes", "--issues", "fj#1,2", "--cls", "3", "--credits", "jade")
	if code != 0 || out != "wrote doc/manual/rl-next/fix-it.md: write what changed below its front matter\n" {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, "-C", dir, "notes", "check"); code != 0 {
		t.Errorf("check rejects the new fragment: %s%s", out, errOut)
	}
	if _, errOut, code := run(t, "-C", dir, "notes", "new", "fix-it", "--synopsis", "Again"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("overwrite: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{
		{"notes", "new", "../escape", "--synopsis", "S"},
		{"notes", "new", "x", "--credits", "stranger"},
		{"notes", "new", "x", "--category", "Bugs"},
		{"notes", "new"},
		{"notes", "new", "a", "b"},
	} {
		if _, errOut, code := run(t, append([]string{"-C", dir}, args...)...); code != 2 {
			t.Errorf("%q: exit %d %s", args, code, errOut)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "doc/manual/rl-next")); len(ents) != 1 {
		t.Errorf("files: %v", ents)
	}
}

func lixRepo(t *testing.T, fragments map[string]string) *testenv.GitRepo {
	t.Helper()
	r := testenv.NewGitRepo(t)
	r.Write("releng.toml", "name = \"lix\"\n")
	r.Write("version.json", "{\n    \"version\": \"2.95.0\",\n    \"official_release\": false,\n    \"release_name\": \"Kakigōri\"\n}\n")
	r.Write("doc/manual/src/SUMMARY.md", "# Summary\n  <!-- RELENG-AUTO-INSERTION-MARKER -->\n")
	r.Write("doc/manual/change-authors.yml", cliAuthors)
	r.Write("doc/manual/rl-next/.gitkeep", "")
	for name, text := range fragments {
		r.Write("doc/manual/rl-next/"+name, text)
	}
	r.CommitAll("initial")
	return r
}

func TestPrepareCommand(t *testing.T) {
	r := lixRepo(t, map[string]string{"good.md": cliGoodFrag})
	if _, errOut, code := run(t, "-C", r.Dir, "prepare", "--date", "2026-3-13"); code != 2 || !strings.Contains(errOut, "YYYY-MM-DD") {
		t.Errorf("bad date: exit %d %s", code, errOut)
	}
	out, errOut, code := run(t, "-C", r.Dir, "--json", "prepare", "--date", "2026-03-13")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var res struct {
		Version, Date, Output, Summary, Commit string
		Removed                                []string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if res.Version != "2.95.0" || res.Output != "doc/manual/src/release-notes/rl-2.95.md" || res.Summary != "doc/manual/src/SUMMARY.md" ||
		len(res.Removed) != 1 || res.Removed[0] != "doc/manual/rl-next/good.md" || res.Commit != r.Git("rev-parse", "HEAD") {
		t.Errorf("result %+v", res)
	}
	if got := r.Git("log", "-1", "--format=%s"); got != "release: release notes for 2.95.0" {
		t.Errorf("commit %q", got)
	}
}

// TestPrepareCommandRefuses: bad fragments, or a dirty tree: exit 1,
// messages on stderr, nothing written.
func TestPrepareCommandRefuses(t *testing.T) {
	r := lixRepo(t, map[string]string{"good.md": cliGoodFrag, "bad.md": "---\nsynopsis: 12\n---\n"})
	head := r.Git("rev-parse", "HEAD")
	out, errOut, code := run(t, "-C", r.Dir, "prepare", "--date", "2026-03-13")
	if code != 1 || out != "" || !strings.Contains(errOut, "doc/manual/rl-next/bad.md:2: synopsis is 12 (a YAML number), not text") ||
		!strings.Contains(errOut, "nothing was written") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	os.WriteFile(filepath.Join(r.Dir, "doc/manual/rl-next/bad.md"), []byte(cliGoodFrag), 0o644)
	_, errOut, code = run(t, "-C", r.Dir, "prepare", "--date", "2026-03-13")
	if code != 1 || !strings.Contains(errOut, "uncommitted changes") {
		t.Errorf("dirty: exit %d %s", code, errOut)
	}
	r.Git("checkout", "--", ".")
	if r.Git("rev-parse", "HEAD") != head || r.Git("status", "--porcelain", "--untracked-files=all") != "" {
		t.Errorf("something was written")
	}
}

func TestNotesUnknownSubcommand(t *testing.T) {
	if _, errOut, code := run(t, "-C", t.TempDir(), "notes", "chekc"); code != 2 || !strings.Contains(errOut, `unknown command "chekc"`) {
		t.Errorf("exit %d %s", code, errOut)
	}
}
