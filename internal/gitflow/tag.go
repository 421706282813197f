package gitflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/signing"
	"github.com/releng-project/releng/internal/versionfile"
)

// PrevBranchFile is the file, under the state directory, that remembers
// the branch `releng tag` started from (SPEC §6.2).
const PrevBranchFile = "prev-branch"

// TagResult is what `releng tag` did.
type TagResult struct {
	Version     string `json:"version"`
	ReleaseName string `json:"release_name"`
	// Branch is the branch the release was merged back into.
	Branch string `json:"branch"`
	// BranchBefore is the branch's commit before the merge.
	BranchBefore string `json:"branch_before"`
	// ReleaseCommit is the detached commit with official_release = true,
	// which the tag points at.
	ReleaseCommit string `json:"release_commit"`
	// TagObject is the annotated tag object.
	TagObject string `json:"tag_object"`
	// MergeCommit is the `-s ours` merge of the tag into Branch.
	MergeCommit string `json:"merge_commit"`
	// Moved is set when --force-tag replaced an existing tag; PreviousTag
	// is the commit that tag pointed at.
	Moved       bool   `json:"moved"`
	PreviousTag string `json:"previous_tag,omitempty"`
	// SignedBy is the fingerprint of the release key that signed the tag
	// ("" for an unsigned tag).
	SignedBy string `json:"signed_by,omitempty"`
}

// TagError is a tag dance that failed midway and was rolled back.
type TagError struct {
	// Step is the step that failed.
	Step string
	Err  error
	// Undone lists what the rollback undid, in order.
	Undone []string
	// Left lists what the rollback could not undo, with what to run.
	Left []string
}

func (e *TagError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "releng tag failed while %s: %v", e.Step, e.Err)
	if len(e.Undone) > 0 {
		b.WriteString("\nrolled back:")
		for _, u := range e.Undone {
			b.WriteString("\n  - " + u)
		}
	}
	if len(e.Left) > 0 {
		b.WriteString("\nNOT rolled back, fix by hand:")
		for _, l := range e.Left {
			b.WriteString("\n  - " + l)
		}
	} else {
		b.WriteString("\nthe repository is as it was before releng tag; fix the cause above and run releng tag again")
	}
	return b.String()
}

func (e *TagError) Unwrap() error { return e.Err }

// CommitMessage returns message with the configured trailer appended as
// its last paragraph (SPEC §3.2: every commit releng makes carries it).
func CommitMessage(p *project.Project, message string) string {
	if t := strings.TrimSpace(p.Config.Git.CommitTrailer); t != "" {
		return message + "\n\n" + t
	}
	return message
}

// ReleaseMessage is the subject of the release commit and tag.
func ReleaseMessage(vf *versionfile.File) string {
	return fmt.Sprintf("release: %s \"%s\"", vf.Version, vf.ReleaseName)
}

// MergeMessage is the message of the merge back into branch.
func MergeMessage(vf *versionfile.File, branch string) string {
	return fmt.Sprintf("release: merge release %s back to mainline\n\n"+
		"This merge uses the ours strategy: it records the release tag %s in the\n"+
		"history of %s but keeps %s's tree, so official_release stays false here.",
		vf.Version, vf.Version, branch, branch)
}

// tagRun is the state of one tag dance, what rollback needs.
type tagRun struct {
	p           *project.Project
	repo        *gitx.Repo
	opts        TagOptions
	vf          *versionfile.File
	rel         string // version file, relative to the repository
	origVersion []byte // the version file's bytes before the dance
	branch      string
	origHead    string
	clean       bool   // the tree was clean at the start
	merging     bool   // a merge was in progress at the start (only with --no-check-git)
	origTag     string // the tag object before (with --force-tag), or ""
	tagMade     bool
	prevFile    string
	prevData    []byte // the old content of prev-branch; nil if absent
	res         TagResult
	key         *signing.PrivateKey // signs the tag; nil: unsigned
}

// Tag runs the tag dance of SPEC §6.2. On failure after the first change,
// everything is undone (the tag deleted or put back, the branch reset, HEAD
// back on the branch, the version file and prev-branch restored) and the
// error is a *TagError saying what was undone.
func Tag(ctx context.Context, p *project.Project, opts TagOptions) (*TagResult, error) {
	if err := Preflight(ctx, p, opts); err != nil {
		return nil, err
	}
	vf, err := versionfile.Read(p.Root, p.Version.Path)
	if err != nil {
		return nil, err
	}
	t := &tagRun{p: p, repo: p.Git, opts: opts, vf: vf, origVersion: bytes.Clone(vf.Raw())}
	if t.key, err = tagKey(p, opts); err != nil {
		return nil, err
	}
	if t.rel, err = relToRepo(p.Git, vf.Path); err != nil {
		return nil, &versionfile.Error{Path: vf.Path, Msg: err.Error()}
	}
	if t.branch, err = t.repo.Branch(ctx); err != nil {
		return nil, err
	}
	if t.branch == "" { // only reachable if preflight changes; keep the guard
		return nil, &PreflightError{Problems: []Problem{{Check: CheckDetached, Msg: "HEAD is detached", Fix: "switch to the release branch"}}}
	}
	if err := gitx.CheckRefName(ctx, "branch", t.branch); err != nil {
		return nil, err
	}
	if t.origHead, err = t.repo.Head(ctx); err != nil {
		return nil, err
	}
	dirty, err := t.repo.Dirty(ctx)
	if err != nil {
		return nil, err
	}
	t.clean = len(dirty) == 0
	t.merging = t.repo.MergeInProgress(ctx)
	if t.origTag, err = t.repo.TagObject(ctx, vf.Version); err != nil {
		return nil, err
	}
	if t.origTag != "" && !opts.ForceTag {
		// Only with --no-check-git: git tag would refuse anyway; say it first.
		return nil, &PreflightError{Problems: []Problem{{Check: CheckTagLocal,
			Msg: fmt.Sprintf("tag %s already exists locally", vf.Version),
			Fix: "pass --force-tag to move it, or bump the version"}}}
	}
	t.res = TagResult{Version: vf.Version, ReleaseName: vf.ReleaseName, Branch: t.branch, BranchBefore: t.origHead}
	if t.origTag != "" {
		t.res.PreviousTag, _ = t.repo.TagCommit(ctx, vf.Version)
	}

	if err := t.run(ctx); err != nil {
		return nil, err
	}
	return &t.res, nil
}

func (t *tagRun) progress(format string, args ...any) {
	if t.opts.Progress != nil {
		fmt.Fprintf(t.opts.Progress, format+"\n", args...)
	}
}

func (t *tagRun) run(ctx context.Context) error {
	v := t.vf.Version
	tagRef := "refs/tags/" + v
	steps := []struct {
		name string
		do   func() error
	}{
		{"excluding the release directory from git", func() error { return ExcludeReleaseDir(ctx, t.p) }},
		{"remembering the branch in " + PrevBranchFile, func() error { return t.rememberBranch() }},
		{"detaching HEAD", func() error { return t.repo.Detach(ctx, t.origHead) }},
		{"setting official_release to true in " + t.rel, func() error { return t.vf.SetOfficial(true) }},
		{"committing the official release", func() error {
			if err := t.repo.Commit(ctx, CommitMessage(t.p, ReleaseMessage(t.vf)), t.rel); err != nil {
				return err
			}
			head, err := t.repo.Head(ctx)
			t.res.ReleaseCommit = head
			t.progress("release commit %s: %s", short(head), ReleaseMessage(t.vf))
			return err
		}},
		{"creating tag " + v, func() error {
			if t.key != nil {
				if err := signedTag(ctx, t.p, t.key, v, CommitMessage(t.p, ReleaseMessage(t.vf)), t.opts.ForceTag); err != nil {
					return err
				}
				t.res.SignedBy = t.key.Public().Fingerprint()
			} else if err := t.repo.TagAnnotated(ctx, v, CommitMessage(t.p, ReleaseMessage(t.vf)), t.opts.ForceTag); err != nil {
				return err
			}
			t.tagMade = true
			obj, err := t.repo.TagObject(ctx, v)
			t.res.TagObject = obj
			t.res.Moved = t.origTag != "" && t.origTag != obj
			if t.res.Moved {
				t.progress("moved tag %s from %s to %s", v, short(t.res.PreviousTag), short(t.res.ReleaseCommit))
			} else {
				t.progress("tag %s at %s", v, short(t.res.ReleaseCommit))
			}
			return err
		}},
		{"switching back to " + t.branch, func() error { return t.repo.SwitchBranch(ctx, t.branch, false) }},
		{"merging tag " + v + " into " + t.branch + " with -s ours", func() error {
			if err := t.repo.MergeOurs(ctx, tagRef, CommitMessage(t.p, MergeMessage(t.vf, t.branch))); err != nil {
				return err
			}
			head, err := t.repo.Head(ctx)
			t.res.MergeCommit = head
			if err != nil {
				return err
			}
			t.progress("merge commit %s on %s", short(head), t.branch)
			return t.checkMerge(ctx)
		}},
		{"detaching HEAD onto tag " + v, func() error { return t.repo.Detach(ctx, t.res.ReleaseCommit) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			// Undo even if ctx was cancelled (Ctrl-C): that is when it matters.
			undone, left := t.rollback(context.WithoutCancel(ctx))
			return &TagError{Step: s.name, Err: err, Undone: undone, Left: left}
		}
	}
	return nil
}

// checkMerge verifies what the merge must be: two parents (the branch's
// old tip, the release commit) and the branch's old tree.
func (t *tagRun) checkMerge(ctx context.Context) error {
	parents, err := t.repo.Parents(ctx, t.res.MergeCommit)
	if err != nil {
		return err
	}
	if len(parents) != 2 || parents[0] != t.origHead || parents[1] != t.res.ReleaseCommit {
		return fmt.Errorf("the merge commit %s has parents %v, want [%s %s]", short(t.res.MergeCommit), parents, short(t.origHead), short(t.res.ReleaseCommit))
	}
	before, err := t.repo.Tree(ctx, t.origHead)
	if err != nil {
		return err
	}
	after, err := t.repo.Tree(ctx, t.res.MergeCommit)
	if err != nil {
		return err
	}
	if before != after {
		return fmt.Errorf("the merge changed %s's tree (a merge hook or merge configuration interfered); it must stay as it was", t.branch)
	}
	return nil
}

func (t *tagRun) rememberBranch() error {
	t.prevFile = filepath.Join(t.p.StateDir(), PrevBranchFile)
	data, err := fsutil.ReadFile(t.prevFile, fsutil.MaxSmallState)
	switch {
	case err == nil:
		t.prevData = data
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.prevFile), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(t.prevFile, []byte(t.branch+"\n"), 0o644)
}

// rollback undoes whatever the dance did, in reverse, and reports it.
func (t *tagRun) rollback(ctx context.Context) (undone, left []string) {
	r := t.repo
	v := t.vf.Version
	fail := func(what string, err error, fix string) {
		left = append(left, fmt.Sprintf("%s: %v; %s", what, firstLine(err), fix))
	}
	changedFile := !t.versionFileIsOriginal()
	if !t.merging && r.MergeInProgress(ctx) {
		if err := r.MergeAbort(ctx); err != nil {
			fail("abort the unfinished merge", err, "run `git merge --abort`")
		} else {
			undone = append(undone, "aborted the unfinished merge of "+v)
		}
	}
	// The tag: delete it if releng made it, or put the old one back.
	if cur, _ := r.TagObject(ctx, v); cur != t.origTag {
		switch {
		case t.origTag == "":
			if err := r.DeleteRef(ctx, "refs/tags/"+v, "releng tag: roll back"); err != nil {
				fail("delete tag "+v, err, "run `git tag -d "+v+"`")
			} else {
				undone = append(undone, "deleted tag "+v)
			}
		default:
			if err := r.UpdateRef(ctx, "refs/tags/"+v, t.origTag, "", "releng tag: roll back"); err != nil {
				fail("restore tag "+v, err, "run `git update-ref refs/tags/"+v+" "+t.origTag+"`")
			} else {
				undone = append(undone, fmt.Sprintf("put tag %s back where it was (%s)", v, short(t.res.PreviousTag)))
			}
		}
	}
	// The branch tip: the merge may have moved it.
	branchRef := "refs/heads/" + t.branch
	if cur, err := r.RevParse(ctx, branchRef); err == nil && cur != "" && cur != t.origHead {
		if err := r.UpdateRef(ctx, branchRef, t.origHead, cur, "releng tag: roll back"); err != nil {
			fail("reset "+t.branch, err, fmt.Sprintf("run `git checkout -f %s && git reset --hard %s`", t.branch, t.origHead))
		} else {
			undone = append(undone, fmt.Sprintf("reset %s from %s back to %s", t.branch, short(cur), short(t.origHead)))
		}
	}
	// HEAD: back on the branch. With a clean start nothing local can be
	// lost, so force; otherwise keep the user's changes.
	if b, _ := r.Branch(ctx); b != t.branch {
		if err := r.SwitchBranch(ctx, t.branch, t.clean); err != nil {
			fail("check out "+t.branch, err, fmt.Sprintf("run `git checkout -f %s`", t.branch))
		} else {
			undone = append(undone, "checked out "+t.branch+" again (HEAD was detached)")
		}
	}
	// The index and the version file: a checkout that failed halfway may
	// have updated them without moving HEAD. With a clean start a hard
	// reset loses nothing; otherwise only the version file is put back.
	if b, _ := r.Branch(ctx); b == t.branch {
		var err error
		if t.clean {
			err = r.Run(ctx, "reset", "-q", "--hard", "HEAD")
		} else {
			err = r.Run(ctx, "reset", "-q", "HEAD", "--", t.rel)
		}
		if err != nil {
			fail("reset the index", err, "run `git reset -- "+t.rel+"`")
		}
	}
	// The version file: back to the bytes it had (the forced checkout
	// usually did it already).
	if !t.versionFileIsOriginal() {
		if err := fsutil.WriteFileAtomic(t.vf.Path, t.origVersion, 0o644); err != nil {
			fail("restore "+t.rel, err, "run `git checkout -- "+t.rel+"`")
			changedFile = false
		}
	}
	if changedFile {
		undone = append(undone, "restored "+t.rel+" (official_release back to false)")
	}
	// prev-branch.
	if t.prevFile != "" {
		var err error
		if t.prevData != nil {
			err = fsutil.WriteFileAtomic(t.prevFile, t.prevData, 0o644)
		} else {
			err = os.Remove(t.prevFile)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fail("restore "+t.prevFile, err, "delete it")
		}
	}
	// Check the result.
	b, _ := r.Branch(ctx)
	h, _ := r.Head(ctx)
	if b != t.branch || h != t.origHead {
		left = append(left, fmt.Sprintf("HEAD is on %q at %s, expected %s at %s: run `git checkout -f %s && git reset --hard %s`",
			b, short(h), t.branch, short(t.origHead), t.branch, t.origHead))
	}
	return undone, left
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (t *tagRun) versionFileIsOriginal() bool {
	cur, err := fsutil.ReadFile(t.vf.Path, fsutil.MaxVersionFile)
	return err == nil && bytes.Equal(cur, t.origVersion)
}

// ExcludeReleaseDir adds the release directory to .git/info/exclude
// (never .gitignore) unless it is there already or outside the checkout.
func ExcludeReleaseDir(ctx context.Context, p *project.Project) error {
	rel, err := relToRepo(p.Git, p.ReleaseDir())
	if err != nil {
		return nil // outside the checkout: nothing to exclude
	}
	return p.Git.Exclude(ctx, "/"+strings.TrimSuffix(rel, "/")+"/")
}

// PrevBranch returns the branch `releng tag` last started from, or "" when
// it has not run.
func PrevBranch(p *project.Project) (string, error) {
	data, err := fsutil.ReadFile(filepath.Join(p.StateDir(), PrevBranchFile), fsutil.MaxSmallState)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	b := strings.TrimSpace(string(data))
	if b == "" {
		return "", nil
	}
	if err := gitx.ValidateRefName("branch", b); err != nil {
		return "", fmt.Errorf("%s: %w (delete the file, or run releng tag again)", filepath.Join(p.StateDir(), PrevBranchFile), err)
	}
	return b, nil
}
