package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

// relengRun runs releng with args and returns stdout, stderr and the exit code.
func relengRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb}, "test")
	return out.String(), errb.String(), code
}

func tagVersionJSON(v string) string {
	return "{\n    \"version\": \"" + v + "\",\n    \"official_release\": false,\n    \"release_name\": \"Bici Bici\"\n}\n"
}

// tagRepo is a checkout on main with releng.toml and version.json at v,
// pushed to and fetched from origin.
func tagRepo(t *testing.T, v string) *testenv.GitRepo {
	t.Helper()
	r := testenv.NewGitRepo(t)
	r.Write("releng.toml", "name = \"lix\"\n")
	r.Write("version.json", tagVersionJSON(v))
	r.CommitAll("initial")
	r.Git("push", "-q", "origin", "main")
	r.Git("fetch", "-q", "origin")
	return r
}

func gitFails(r *testenv.GitRepo, args ...string) bool {
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	return cmd.Run() != nil
}

func TestTagCommand(t *testing.T) {
	r := tagRepo(t, "2.93.0")
	out, errOut, code := relengRun(t, "-C", r.Dir, "tag")
	if code != 0 {
		t.Fatalf("releng tag: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"tagged 2.93.0 \"Bici Bici\"", "merge commit", "detached at 2.93.0", "next:", "releng build", "releng branch-off", "release-2.93", "git switch main"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "release commit") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}
	if d := r.Git("describe", "--exact-match"); d != "2.93.0" {
		t.Errorf("describe = %q", d)
	}
	if ex, _ := os.ReadFile(filepath.Join(r.Dir, ".git", "info", "exclude")); !strings.Contains(string(ex), "/release/") {
		t.Errorf("release/ not in .git/info/exclude")
	}
	if _, err := os.Stat(filepath.Join(r.Dir, ".gitignore")); err == nil {
		t.Errorf(".gitignore written")
	}

	// Again, on the tag: refused by the preflight, saying what to do.
	_, errOut, code = relengRun(t, "-C", r.Dir, "tag")
	if code != 1 || !strings.Contains(errOut, "cannot tag") || !strings.Contains(errOut, "already tagged") || !strings.Contains(errOut, "fix:") {
		t.Errorf("second tag: exit %d\n%s", code, errOut)
	}
	// Again, back on main: the tag exists.
	r.Git("checkout", "-q", "main")
	_, errOut, code = relengRun(t, "-C", r.Dir, "tag")
	if code != 1 || !strings.Contains(errOut, "tag 2.93.0 already exists locally") || !strings.Contains(errOut, "--force-tag") {
		t.Errorf("tag on main with the tag present: exit %d\n%s", code, errOut)
	}
	// --force-tag moves it.
	old := r.Git("rev-parse", "2.93.0^{commit}")
	r.Write("README", "late fix\n")
	r.CommitAll("late fix")
	out, errOut, code = relengRun(t, "-C", r.Dir, "tag", "--force-tag")
	if code != 0 || !strings.Contains(out, "moved tag") {
		t.Fatalf("tag --force-tag: exit %d\n%s%s", code, out, errOut)
	}
	if now := r.Git("rev-parse", "2.93.0^{commit}"); now == old || r.Git("show", "2.93.0:README") != "late fix" {
		t.Errorf("tag not moved (still %s)", now)
	}
}

func TestTagCommandJSON(t *testing.T) {
	r := tagRepo(t, "2.93.0")
	out, errOut, code := relengRun(t, "-C", r.Dir, "--json", "tag")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var res struct {
		Version       string `json:"version"`
		Branch        string `json:"branch"`
		ReleaseCommit string `json:"release_commit"`
		MergeCommit   string `json:"merge_commit"`
		TagObject     string `json:"tag_object"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if res.Version != "2.93.0" || res.Branch != "main" || res.ReleaseCommit != r.Git("rev-parse", "HEAD") || res.MergeCommit != r.Git("rev-parse", "main") || res.TagObject != r.Git("rev-parse", "refs/tags/2.93.0") {
		t.Errorf("JSON %+v does not match the repository", res)
	}
}

func TestTagCommandFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *testenv.GitRepo)
		args  []string
		code  int
		want  []string
	}{
		{"dirty tree", func(r *testenv.GitRepo) { r.Write("releng.toml", "name = \"lix\"\n# edited\n") }, nil, 1,
			[]string{"uncommitted changes", "releng.toml", "git stash"}},
		{"dirty tree, --no-check-git", func(r *testenv.GitRepo) { r.Write("releng.toml", "name = \"lix\"\n# edited\n") }, []string{"--no-check-git"}, 0, nil},
		{"detached HEAD", func(r *testenv.GitRepo) { r.Git("checkout", "-q", "--detach") }, nil, 1,
			[]string{"HEAD is detached", "git switch main"}},
		{"official already", func(r *testenv.GitRepo) {
			r.Write("version.json", strings.Replace(tagVersionJSON("2.93.0"), "false", "true", 1))
			r.CommitAll("official")
		}, nil, 1, []string{"already says \"official_release\": true", "set it back to false"}},
		{"tag on the remote", func(r *testenv.GitRepo) {
			r.Git("tag", "2.93.0")
			r.Git("push", "-q", "origin", "2.93.0")
			r.Git("tag", "-d", "2.93.0")
		}, nil, 1, []string{"already exists on remote \"origin\"", "bump"}},
		{"several problems at once", func(r *testenv.GitRepo) {
			r.Git("tag", "2.93.0")
			r.Write("releng.toml", "name = \"lix\"\n# edited\n")
		}, nil, 1, []string{"2 problems", "1. ", "2. "}},
		{"merge refused by a hook", func(r *testenv.GitRepo) {
			hooks := filepath.Join(r.Dir, ".git", "hooks")
			r.Git("config", "core.hooksPath", hooks)
			os.MkdirAll(hooks, 0o755)
			os.WriteFile(filepath.Join(hooks, "commit-msg"), []byte("#!/bin/sh\ngrep -q 'merge release' \"$1\" && { echo 'merges need review' >&2; exit 1; }\nexit 0\n"), 0o755)
		}, nil, 1, []string{"failed while merging tag 2.93.0", "merges need review", "rolled back:", "deleted tag 2.93.0", "as it was before releng tag"}},
		{"unknown flag", nil, []string{"--force"}, 2, []string{"unknown flag"}},
		{"argument", nil, []string{"2.94.0"}, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tagRepo(t, "2.93.0")
			if tc.setup != nil {
				tc.setup(r)
			}
			head := r.Git("rev-parse", "HEAD")
			branch, _ := exec.Command("git", "-C", r.Dir, "symbolic-ref", "-q", "--short", "HEAD").Output()
			out, errOut, code := relengRun(t, append([]string{"-C", r.Dir, "tag"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if code != 0 {
				b, _ := exec.Command("git", "-C", r.Dir, "symbolic-ref", "-q", "--short", "HEAD").Output()
				if string(b) != string(branch) || r.Git("rev-parse", "HEAD") != head {
					t.Errorf("a failed tag moved HEAD: %s at %s, was %s at %s", b, r.Git("rev-parse", "HEAD"), branch, head)
				}
			}
		})
	}
}

// Versions a new user might try: each is refused with a clear error naming
// the version file (exit 2), and the string never reaches git as an
// argument. A wrapper on PATH records every argv git is given.
func TestTagBadVersionNeverReachesGit(t *testing.T) {
	realGit, err := exec.LookPath("git")
	if err != nil {
		testenv.Missing(t, "git", "apt-get install -y git")
	}
	for _, v := range []string{"2.93.0; rm -rf /", "--upload-pack=x", "-2.93.0", "$(touch pwned)", "2.93.0`id`", "2.93.0 && echo hi", "../../etc/passwd"} {
		t.Run(v, func(t *testing.T) {
			r := tagRepo(t, "2.93.0")
			r.Write("version.json", tagVersionJSON(v))
			r.CommitAll("bad version")
			head := r.Git("rev-parse", "HEAD")

			bin := t.TempDir()
			log := filepath.Join(bin, "argv.log")
			wrapper := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '" + log + "'; done\nexec '" + realGit + "' \"$@\"\n"
			if err := os.WriteFile(filepath.Join(bin, "git"), []byte(wrapper), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

			for _, args := range [][]string{{"tag"}, {"tag", "--no-check-git"}, {"tag", "--force-tag"}, {"branch-off"}} {
				_, errOut, code := relengRun(t, append([]string{"-C", r.Dir}, args...)...)
				if code != 2 || !strings.Contains(errOut, "version.json") || !strings.Contains(errOut, v) {
					t.Errorf("releng %v: exit %d, want 2 with an error naming version.json and the version:\n%s", args, code, errOut)
				}
			}
			logged, _ := os.ReadFile(log)
			if !strings.Contains(string(logged), "rev-parse") {
				t.Fatalf("the git wrapper was not used (log: %q)", logged)
			}
			if strings.Contains(string(logged), v) {
				t.Errorf("%q reached git:\n%s", v, logged)
			}
			if r.Git("rev-parse", "HEAD") != head || r.Git("tag", "-l") != "" {
				t.Errorf("the repository changed")
			}
		})
	}
}

func TestStatusGitFacts(t *testing.T) {
	r := tagRepo(t, "2.93.0")
	type gitFacts struct {
		Branch        string `json:"branch"`
		Detached      bool   `json:"detached"`
		OnTag         bool   `json:"on_tag"`
		TagCommit     string `json:"tag_commit"`
		Clean         bool   `json:"clean"`
		PrevBranch    string `json:"prev_branch"`
		Remote        string `json:"remote"`
		RemoteFetched bool   `json:"remote_fetched"`
		TagOnRemote   bool   `json:"tag_on_remote"`
		Maintenance   bool   `json:"maintenance"`
		MainRef       string `json:"main_ref"`
	}
	status := func() gitFacts {
		t.Helper()
		out, errOut, code := relengRun(t, "-C", r.Dir, "--json", "status")
		if code != 0 {
			t.Fatalf("status: exit %d\n%s", code, errOut)
		}
		var st struct {
			Git gitFacts `json:"git"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return st.Git
	}
	g := status()
	if g.Branch != "main" || g.Detached || g.OnTag || g.TagCommit != "" || !g.Clean || g.Remote != "origin" || !g.RemoteFetched || g.TagOnRemote || g.Maintenance || g.MainRef != "refs/remotes/origin/main" {
		t.Errorf("before tag: %+v", g)
	}
	if _, errOut, code := relengRun(t, "-C", r.Dir, "tag"); code != 0 {
		t.Fatalf("tag: %s", errOut)
	}
	g = status()
	if g.Branch != "" || !g.Detached || !g.OnTag || g.TagCommit == "" || g.PrevBranch != "main" || g.TagOnRemote {
		t.Errorf("after tag: %+v", g)
	}
	// Pushed and fetched: the remote-tracking main now contains the tag.
	r.Git("push", "-q", "origin", "main", "2.93.0")
	r.Git("fetch", "-q", "origin")
	if g = status(); !g.TagOnRemote {
		t.Errorf("after push and fetch: %+v", g)
	}
	out, _, _ := relengRun(t, "-C", r.Dir, "status")
	for _, want := range []string{"detached on tag 2.93.0", "tag on origin", "present (as of the last fetch)", "maintenance", "tagged from", "tree"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// Status never contacts the remote: it works with the remote gone.
	if err := os.RemoveAll(r.Remote); err != nil {
		t.Fatal(err)
	}
	if g = status(); !g.TagOnRemote {
		t.Errorf("with the remote gone: %+v", g)
	}
	if gitFails(r, "status") {
		t.Errorf("git status fails")
	}
}
