package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/example"
	"github.com/releng-project/releng/internal/testenv"
)

// sandboxProject is the example project in a git repository inside a temp
// sandbox, tagged and checked out on its tag, with sentinel files in the
// project, in src/ and in the sandbox around it.
type sandboxProject struct {
	repo      *testenv.GitRepo
	sentinels map[string][]byte
	head      string
}

func newSandboxProject(t *testing.T, toml func(string) string) *sandboxProject {
	t.Helper()
	r := testenv.NewGitRepo(t)
	if _, err := example.Write(r.Dir, false); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(r.Dir, "releng.toml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Write("releng.toml", toml(string(data)))
	sp := &sandboxProject{repo: r, sentinels: map[string][]byte{}}
	for _, p := range []string{
		filepath.Join(r.Dir, "SENTINEL"),
		filepath.Join(r.Dir, "src", "SENTINEL"),
		filepath.Join(filepath.Dir(r.Dir), "SENTINEL"),
	} {
		content := []byte("sentinel " + p + "\n")
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		sp.sentinels[p] = content
	}
	r.CommitAll("example")
	r.Git("tag", "-a", "-m", "release", "1.0.0")
	r.Git("checkout", "-q", "--detach", "1.0.0")
	sp.head = r.Git("rev-parse", "HEAD")
	return sp
}

// check asserts every sentinel is byte-identical, the example's sources
// are there and the repository is intact.
func (sp *sandboxProject) check(t *testing.T) {
	t.Helper()
	for p, want := range sp.sentinels {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("sentinel %s: %v (content %q)", p, err, got)
		}
	}
	for _, f := range []string{"flake.nix", "version.json", "releng.toml", "src/hello.sh"} {
		if _, err := os.Stat(filepath.Join(sp.repo.Dir, f)); err != nil {
			t.Errorf("project file %s: %v", f, err)
		}
	}
	if head := sp.repo.Git("rev-parse", "HEAD"); head != sp.head {
		t.Errorf("HEAD moved: %s, want %s", head, sp.head)
	}
	sp.repo.Git("fsck", "--no-progress")
}

func withReleaseDir(dir string) func(string) string {
	return func(toml string) string {
		return strings.Replace(toml, "name = ", "release_dir = "+tomlString(dir)+"\nname = ", 1)
	}
}

func tomlString(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// TestReleaseDirNeverEscapes: a release_dir that is the project, its
// parent, a source directory, a directory outside the project or a link
// to the parent is refused before anything is touched, by every command
// that writes or clears it.
func TestReleaseDirNeverEscapes(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "SENTINEL"), []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		releaseDir string
		link       string // a symbolic link made in the project first: name -> target
		wantCode   int
		wantMsg    string
	}{
		{"root", ".", "", 2, "is the project root itself"},
		{"parent", "..", "", 2, "is outside the project root"},
		{"outside", outside, "", 2, "is outside the project root"},
		{"src", "src", "", 1, "which releng did not write"},
		{"link to parent", "up", "up=..", 2, "through a symbolic link it leads to"},
		{"link to outside", "out", "out=" + outside, 2, "through a symbolic link it leads to"},
		{"inside .git", ".git/release", "", 2, "inside the repository's .git directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := newSandboxProject(t, withReleaseDir(c.releaseDir))
			if c.link != "" {
				name, target, _ := strings.Cut(c.link, "=")
				if err := os.Symlink(target, filepath.Join(sp.repo.Dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{
				{"build"},
				{"image", "build"},
				{"upload", "--noconfirm"},
				{"status"},
			} {
				if c.wantCode == 1 && args[0] != "build" {
					continue // a release_dir inside the project loads; only what clears it refuses (image build only adds src/images)
				}
				_, errOut, code := run(t, append([]string{"-C", sp.repo.Dir}, args...)...)
				if code != c.wantCode || !strings.Contains(errOut, c.wantMsg) {
					t.Errorf("%s: exit %d, want %d with %q:\n%s", strings.Join(args, " "), code, c.wantCode, c.wantMsg, errOut)
				}
				sp.check(t)
			}
			if got, err := os.ReadFile(filepath.Join(outside, "SENTINEL")); err != nil || string(got) != "outside\n" {
				t.Errorf("sentinel outside the project: %v %q", err, got)
			}
		})
	}
}

// TestBuildRefusesForeignFiles: a release directory holding files releng
// did not write (no ledger, or not in it) is not cleared.
func TestBuildRefusesForeignFiles(t *testing.T) {
	sp := newSandboxProject(t, func(s string) string { return s })
	foreign := filepath.Join(sp.repo.Dir, "release", "artifacts", "mine.txt")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("not releng's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp.sentinels[foreign] = []byte("not releng's\n")
	_, errOut, code := run(t, "-C", sp.repo.Dir, "build")
	if code != 1 || !strings.Contains(errOut, filepath.Join(sp.repo.Dir, "release", "artifacts")) || !strings.Contains(errOut, "did not write") {
		t.Errorf("build over a foreign file: exit %d:\n%s", code, errOut)
	}
	sp.check(t)
}

// TestNotesNeverFollowLinksOut: fragments, the authors file and the
// version file linked to a secret outside the project are refused by name,
// and the secret reaches no output and no commit.
func TestNotesNeverFollowLinksOut(t *testing.T) {
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.md")
	if err := os.WriteFile(secret, []byte("---\nsynopsis: TOPSECRET\n---\nAWS_SECRET_ACCESS_KEY=TOPSECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, link string
		commands   [][]string
	}{
		{"fragment", "doc/manual/rl-next/env.md", [][]string{{"notes", "check"}, {"notes", "render"}, {"prepare", "--date", "2025-01-18"}}},
		{"authors", "doc/manual/change-authors.yml", [][]string{{"notes", "check"}, {"notes", "render"}, {"prepare", "--date", "2025-01-18"}}},
		{"version file", "version.json", [][]string{{"status"}, {"notes", "check"}, {"prepare", "--date", "2025-01-18"}}},
		{"proc environ", "doc/manual/rl-next/environ.md", [][]string{{"notes", "check"}, {"prepare", "--date", "2025-01-18"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testenv.NewGitRepo(t)
			if _, err := example.Write(r.Dir, false); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(r.Dir, c.link)
			os.Remove(link)
			target := secret
			if c.name == "proc environ" {
				target = "/proc/self/environ"
				t.Setenv("RELENG_TEST_SECRET", "TOPSECRET")
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			r.CommitAll("example")
			for _, args := range c.commands {
				out, errOut, code := run(t, append([]string{"-C", r.Dir}, args...)...)
				if c.name == "version file" && args[0] == "notes" {
					// notes check does not need the version file.
					if strings.Contains(out+errOut, "TOPSECRET") {
						t.Errorf("%v printed the secret:\n%s%s", args, out, errOut)
					}
					continue
				}
				if code == 0 {
					t.Errorf("%v: exit 0\n%s%s", args, out, errOut)
				}
				if !strings.Contains(out+errOut, filepath.Base(c.link)) || !strings.Contains(out+errOut, "outside") {
					t.Errorf("%v does not name the link %s:\n%s%s", args, c.link, out, errOut)
				}
				if strings.Contains(out+errOut, "TOPSECRET") {
					t.Errorf("%v printed the secret:\n%s%s", args, out, errOut)
				}
			}
			if log := r.Git("log", "-p", "--all"); strings.Contains(log, "TOPSECRET") {
				t.Errorf("the secret reached a commit")
			}
		})
	}
}
