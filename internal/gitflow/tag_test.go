package gitflow

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/versionfile"
)

func TestTagDance(t *testing.T) {
	r := newRepo(t, "2.93.0")
	before := r.Git("rev-parse", "HEAD")
	treeBefore := r.Git("rev-parse", "HEAD^{tree}")
	p := open(t, r)
	var progress strings.Builder
	res, err := Tag(context.Background(), p, TagOptions{Progress: &progress})
	if err != nil {
		t.Fatalf("tag: %v", err)
	}

	tagCommit := r.Git("rev-parse", "2.93.0^{commit}")
	if res.ReleaseCommit != tagCommit {
		t.Errorf("result release commit %s, tag at %s", res.ReleaseCommit, tagCommit)
	}
	// The tag commit differs from its parent only in official_release.
	if got := r.Git("rev-parse", tagCommit+"^"); got != before {
		t.Errorf("tag commit's parent is %s, want the branch tip %s", got, before)
	}
	if files := r.Git("diff", "--name-only", before, tagCommit); files != "version.json" {
		t.Errorf("tag commit changes %q, want only version.json", files)
	}
	parentFile := r.Git("show", before+":version.json") + "\n"
	tagFile := r.Git("show", tagCommit+":version.json") + "\n"
	if want := strings.Replace(parentFile, `"official_release": false`, `"official_release": true`, 1); tagFile != want {
		t.Errorf("tag commit's version.json:\n%s\nwant:\n%s", tagFile, want)
	}
	// Annotated tag, same message as the commit, both with the trailer.
	if typ := r.Git("cat-file", "-t", "refs/tags/2.93.0"); typ != "tag" {
		t.Errorf("tag is a %s, want an annotated tag", typ)
	}
	wantMsg := "release: 2.93.0 \"Bici Bici\"\n\nRelease produced with releng"
	if msg := r.Git("log", "-1", "--format=%B", tagCommit); msg != wantMsg {
		t.Errorf("release commit message %q, want %q", msg, wantMsg)
	}
	if msg := r.Git("tag", "-l", "--format=%(contents)", "2.93.0"); strings.TrimSpace(msg) != wantMsg {
		t.Errorf("tag message %q, want %q", msg, wantMsg)
	}
	// The merge back: two parents, the branch's tree, the message.
	merge := r.Git("rev-parse", "refs/heads/main")
	if merge != res.MergeCommit {
		t.Errorf("main is at %s, result says merge %s", merge, res.MergeCommit)
	}
	if parents := r.Git("log", "-1", "--format=%P", merge); parents != before+" "+tagCommit {
		t.Errorf("merge parents %q, want %q", parents, before+" "+tagCommit)
	}
	if tree := r.Git("rev-parse", "main^{tree}"); tree != treeBefore {
		t.Errorf("main's tree changed: %s, was %s", tree, treeBefore)
	}
	msg := r.Git("log", "-1", "--format=%B", merge)
	for _, want := range []string{"release: merge release 2.93.0 back to mainline\n", "ours strategy", "keeps main's tree", "\n\nRelease produced with releng"} {
		if !strings.Contains(msg, want) {
			t.Errorf("merge message %q lacks %q", msg, want)
		}
	}
	// HEAD detached at the tag.
	if _, ok := gitOK(r, "symbolic-ref", "-q", "HEAD"); ok {
		t.Errorf("HEAD is on a branch, want detached")
	}
	if head := r.Git("rev-parse", "HEAD"); head != tagCommit {
		t.Errorf("HEAD at %s, want the tag commit %s", head, tagCommit)
	}
	if d := r.Git("describe", "--exact-match"); d != "2.93.0" {
		t.Errorf("git describe --exact-match = %q", d)
	}
	if st := r.Git("status", "--porcelain"); st != "" {
		t.Errorf("tree not clean after tag:\n%s", st)
	}
	// State and exclude.
	if b, err := os.ReadFile(filepath.Join(r.Dir, "release", "state", PrevBranchFile)); err != nil || string(b) != "main\n" {
		t.Errorf("prev-branch = %q, %v", b, err)
	}
	if pb, err := PrevBranch(p); err != nil || pb != "main" {
		t.Errorf("PrevBranch = %q, %v", pb, err)
	}
	if ex, _ := os.ReadFile(filepath.Join(r.Dir, ".git", "info", "exclude")); !strings.Contains(string(ex), "/release/\n") {
		t.Errorf(".git/info/exclude lacks /release/:\n%s", ex)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, ".gitignore")); err == nil {
		t.Errorf(".gitignore was written")
	}
	for _, want := range []string{"release commit", "tag 2.93.0", "merge commit"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}

	// Running tag again fails in preflight, and says why.
	_, err = Tag(context.Background(), open(t, r), TagOptions{})
	var pe *PreflightError
	if !errors.As(err, &pe) || !pe.Has(CheckDetached) || !strings.Contains(err.Error(), "already tagged") {
		t.Fatalf("second tag on the tag: %v, want a preflight error saying it is already tagged", err)
	}
	r.Git("checkout", "-q", "main")
	_, err = Tag(context.Background(), open(t, r), TagOptions{})
	if !errors.As(err, &pe) || !pe.Has(CheckTagLocal) || !strings.Contains(err.Error(), "--force-tag") {
		t.Fatalf("second tag on main: %v, want tag-exists preflight error mentioning --force-tag", err)
	}
	if head := r.Git("rev-parse", "HEAD"); head != merge {
		t.Errorf("a refused tag moved main to %s", head)
	}
}

func TestForceTagMovesTag(t *testing.T) {
	r := newRepo(t, "2.93.0")
	first := tagRelease(t, r)
	r.Write("README", "fixed\n")
	r.CommitAll("fix found after tagging")
	res, err := Tag(context.Background(), open(t, r), TagOptions{ForceTag: true})
	if err != nil {
		t.Fatalf("tag --force-tag: %v", err)
	}
	if !res.Moved || res.PreviousTag != first.ReleaseCommit {
		t.Errorf("Moved=%v PreviousTag=%s, want true and %s", res.Moved, res.PreviousTag, first.ReleaseCommit)
	}
	if c := r.Git("rev-parse", "2.93.0^{commit}"); c != res.ReleaseCommit || c == first.ReleaseCommit {
		t.Errorf("tag at %s, want the new release commit %s", c, res.ReleaseCommit)
	}
	if got := r.Git("show", "2.93.0:README"); got != "fixed" {
		t.Errorf("moved tag's README = %q", got)
	}
	if d := r.Git("describe", "--exact-match"); d != "2.93.0" {
		t.Errorf("describe = %q", d)
	}
}

func TestPreflight(t *testing.T) {
	type setup func(t *testing.T, r *gitRepo)
	tests := []struct {
		name  string
		setup setup
		opts  TagOptions
		check string // the failing check, "" for success
		fix   string // a piece of the fix text
	}{
		{"clean", nil, TagOptions{}, "", ""},
		{"modified file", func(t *testing.T, r *gitRepo) { r.Write("README", "changed\n") }, TagOptions{}, CheckDirty, "git stash"},
		{"staged file", func(t *testing.T, r *gitRepo) { r.Write("new", "x\n"); r.Git("add", "new") }, TagOptions{}, CheckDirty, "commit them"},
		{"untracked file is fine", func(t *testing.T, r *gitRepo) { r.Write("scratch", "x\n") }, TagOptions{}, "", ""},
		{"detached", func(t *testing.T, r *gitRepo) { r.Git("checkout", "-q", "--detach") }, TagOptions{}, CheckDetached, "git switch main"},
		{"detached even with --no-check-git", func(t *testing.T, r *gitRepo) { r.Git("checkout", "-q", "--detach") }, TagOptions{NoCheckGit: true}, CheckDetached, ""},
		{"official already", func(t *testing.T, r *gitRepo) {
			r.Write("version.json", versionJSON("2.93.0", true))
			r.CommitAll("oops")
		}, TagOptions{}, CheckOfficial, "set it back to false"},
		{"tag exists locally", func(t *testing.T, r *gitRepo) { r.Git("tag", "2.93.0") }, TagOptions{}, CheckTagLocal, "--force-tag"},
		{"tag exists locally, forced", func(t *testing.T, r *gitRepo) { r.Git("tag", "2.93.0") }, TagOptions{ForceTag: true}, "", ""},
		{"tag exists on the remote", func(t *testing.T, r *gitRepo) {
			r.Git("tag", "2.93.0")
			r.Git("push", "-q", "origin", "2.93.0")
			r.Git("tag", "-d", "2.93.0")
		}, TagOptions{}, CheckTagRemote, "bump"},
		{"remote unreachable", func(t *testing.T, r *gitRepo) {
			r.Git("remote", "set-url", "origin", filepath.Join(t.TempDir(), "gone.git"))
		}, TagOptions{}, CheckRemoteDown, "--no-check-git"},
		{"version file untracked", func(t *testing.T, r *gitRepo) {
			r.Git("rm", "-q", "--cached", "version.json")
			r.Git("commit", "-q", "-m", "untrack")
		}, TagOptions{}, CheckUntracked, "git add version.json"},
		{"merge in progress", func(t *testing.T, r *gitRepo) {
			r.Git("checkout", "-q", "-b", "side")
			r.Write("side", "x\n")
			r.CommitAll("side")
			r.Git("checkout", "-q", "main")
			r.Git("merge", "-q", "--no-commit", "--no-ff", "side")
		}, TagOptions{NoCheckGit: true}, CheckMerge, "git merge --abort"},
		{"--no-check-git skips dirty, official and tags", func(t *testing.T, r *gitRepo) {
			r.Write("version.json", versionJSON("2.93.0", true))
			r.CommitAll("official")
			r.Git("tag", "2.93.0")
			r.Write("README", "dirty\n")
		}, TagOptions{NoCheckGit: true, ForceTag: true}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, "2.93.0")
			if tc.setup != nil {
				tc.setup(t, r)
			}
			err := Preflight(context.Background(), open(t, r), tc.opts)
			if tc.check == "" {
				if err != nil {
					t.Fatalf("preflight: %v", err)
				}
				return
			}
			var pe *PreflightError
			if !errors.As(err, &pe) || !pe.Has(tc.check) {
				t.Fatalf("preflight = %v, want a %s problem", err, tc.check)
			}
			if !strings.Contains(err.Error(), "fix: ") || !strings.Contains(err.Error(), tc.fix) {
				t.Errorf("error does not say how to fix it (want %q):\n%v", tc.fix, err)
			}
		})
	}
}

// Preflight re-reads the version file: what is on disk is what is checked,
// and an unsafe version never reaches git.
func TestPreflightVersionFile(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" deletes the file
		want    string
	}{
		{"missing", "", "version file not found"},
		{"shell injection", versionJSON("2.93.0; rm -rf /", false), "2.93.0; rm -rf /"},
		{"option injection", versionJSON("--upload-pack=x", false), "--upload-pack=x"},
		{"not a version", versionJSON("banana", false), "banana"},
		{"not JSON", "{\"version\": ", "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, "2.93.0")
			p := open(t, r)
			if tc.content == "" {
				if err := os.Remove(p.Version.Path); err != nil {
					t.Fatal(err)
				}
			} else {
				r.Write("version.json", tc.content)
			}
			_, err := Tag(context.Background(), p, TagOptions{NoCheckGit: true})
			var ve *versionfile.Error
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "version.json") {
				t.Fatalf("tag = %v, want a version file error naming the file and %q", err, tc.want)
			}
			if tags := r.Git("tag", "-l"); tags != "" {
				t.Errorf("tags were made: %s", tags)
			}
		})
	}
}

func TestValidateVersion(t *testing.T) {
	for _, v := range []string{"2.93.0", "2.90.0-beta.1", "2.90.0rc1", "2.96.0-dev", "1.0+local.7"} {
		if err := ValidateVersion(context.Background(), &versionfile.File{Path: "version.json", Version: v}); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"2.93.0; rm -rf /", "--upload-pack=x", "-2.93.0", "2.93.0 ", "$(id)", "2.93..0", "2.93.0.lock", "", "2.93.0\n",
		"1!2.0.post1", // valid PEP 440, but "!" is no tag name
	} {
		err := ValidateVersion(context.Background(), &versionfile.File{Path: "version.json", Version: v})
		var ve *versionfile.Error
		if !errors.As(err, &ve) {
			t.Errorf("%q: got %v, want a *versionfile.Error", v, err)
		}
	}
}

func TestTagRollback(t *testing.T) {
	tests := []struct {
		name      string
		hook      string
		script    string
		forceTag  bool
		wantStep  string
		wantUndo  []string
		tagBefore bool
		dirty     bool // start with a modified README and --no-check-git
	}{
		{"commit-msg fails on the merge", "commit-msg", `grep -q "merge release" "$1" && { echo "no merges here" >&2; exit 1; }; exit 0`, false,
			"merging tag", []string{"aborted the unfinished merge", "deleted tag 2.93.0"}, false, false},
		{"pre-merge-commit fails", "pre-merge-commit", `echo "merge refused" >&2; exit 1`, false,
			"merging tag", []string{"aborted the unfinished merge", "deleted tag 2.93.0"}, false, false},
		{"pre-commit fails on the release commit", "pre-commit", `echo "no commits today" >&2; exit 1`, false,
			"committing the official release", []string{"checked out main", "restored version.json"}, false, false},
		{"detaching onto the tag fails after the merge", "reference-transaction", `[ "$1" = prepared ] || exit 0
marker="$(git rev-parse --git-dir)/refused-once"
[ -e "$marker" ] && exit 0
if grep -q ' HEAD$' && git rev-parse -q --verify refs/heads/main^2 >/dev/null; then touch "$marker"; echo "detach refused" >&2; exit 1; fi
exit 0`, false,
			"detaching HEAD onto tag", []string{"deleted tag 2.93.0", "reset main from", "back to"}, false, false},
		{"merge fails with --no-check-git and a dirty tree: local changes survive", "commit-msg", `grep -q "merge release" "$1" && exit 1; exit 0`, false,
			"merging tag", []string{"deleted tag 2.93.0"}, false, true},
		{"merge fails with --force-tag: the old tag comes back", "commit-msg", `grep -q "merge release" "$1" && exit 1; exit 0`, true,
			"merging tag", []string{"put tag 2.93.0 back"}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, "2.93.0")
			oldTag := ""
			if tc.tagBefore {
				r.Git("tag", "-a", "-m", "old", "2.93.0")
				oldTag = r.Git("rev-parse", "refs/tags/2.93.0")
				r.Write("README", "later\n")
				r.CommitAll("later")
			}
			head := r.Git("rev-parse", "HEAD")
			tree := r.Git("rev-parse", "HEAD^{tree}")
			hook(t, r, tc.hook, tc.script)
			if tc.dirty {
				r.Write("README", "work in progress\n")
			}

			_, err := Tag(context.Background(), open(t, r), TagOptions{ForceTag: tc.forceTag, NoCheckGit: tc.dirty})
			var te *TagError
			if !errors.As(err, &te) {
				t.Fatalf("tag = %v, want a *TagError", err)
			}
			if !strings.HasPrefix(te.Step, tc.wantStep) {
				t.Errorf("failed step %q, want %q", te.Step, tc.wantStep)
			}
			msg := err.Error()
			for _, u := range tc.wantUndo {
				if !strings.Contains(msg, u) {
					t.Errorf("error does not say %q was undone:\n%s", u, msg)
				}
			}
			if len(te.Left) > 0 || !strings.Contains(msg, "the repository is as it was") {
				t.Errorf("rollback left things behind:\n%s", msg)
			}
			if b := r.Git("symbolic-ref", "--short", "HEAD"); b != "main" {
				t.Errorf("HEAD on %q, want main", b)
			}
			if h := r.Git("rev-parse", "HEAD"); h != head {
				t.Errorf("main at %s, want %s", h, head)
			}
			if tr := r.Git("rev-parse", "HEAD^{tree}"); tr != tree {
				t.Errorf("tree %s, want %s", tr, tree)
			}
			wantStatus := ""
			if tc.dirty {
				wantStatus = "M README"
			}
			if st := r.Git("status", "--porcelain", "--untracked-files=no"); st != wantStatus {
				t.Errorf("status after rollback %q, want %q", st, wantStatus)
			}
			if _, ok := gitOK(r, "rev-parse", "-q", "--verify", "MERGE_HEAD"); ok {
				t.Errorf("a merge is still in progress")
			}
			if got, _ := gitOK(r, "rev-parse", "-q", "--verify", "refs/tags/2.93.0"); got != oldTag {
				t.Errorf("tag 2.93.0 is %q after rollback, want %q", got, oldTag)
			}
			if _, err := os.Stat(filepath.Join(r.Dir, "release", "state", PrevBranchFile)); err == nil {
				t.Errorf("prev-branch left behind")
			}
		})
	}
}

// With --no-check-git a dirty tree is allowed: only the version file goes
// into the release commit, and the local changes stay local.
func TestTagNoCheckGitDirty(t *testing.T) {
	r := newRepo(t, "2.93.0")
	r.Write("README", "work in progress\n")
	res, err := Tag(context.Background(), open(t, r), TagOptions{NoCheckGit: true})
	if err != nil {
		t.Fatalf("tag --no-check-git: %v", err)
	}
	if files := r.Git("diff", "--name-only", res.BranchBefore, res.ReleaseCommit); files != "version.json" {
		t.Errorf("release commit changes %q, want only version.json", files)
	}
	if st := r.Git("status", "--porcelain", "--untracked-files=no"); st != "M README" {
		t.Errorf("status %q, want the README change kept", st)
	}
}

func TestTagCustomTrailer(t *testing.T) {
	r := newRepo(t, "2.93.0")
	r.Write("releng.toml", testToml+"[git]\ncommit_trailer = \"Released-by: the release team\"\n")
	r.CommitAll("trailer")
	res := tagRelease(t, r)
	for _, c := range []string{res.ReleaseCommit, res.MergeCommit} {
		if msg := r.Git("log", "-1", "--format=%B", c); !strings.HasSuffix(msg, "\n\nReleased-by: the release team") {
			t.Errorf("commit %s message %q lacks the trailer", c, msg)
		}
	}
	if tr := r.Git("log", "-1", "--format=%(trailers:key=Released-by,valueonly)", res.MergeCommit); tr != "the release team" {
		t.Errorf("git does not read it as a trailer: %q", tr)
	}
}
