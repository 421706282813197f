package gitflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/version"
	"github.com/releng-project/releng/internal/versionfile"
)

// TagOptions are the choices of `releng tag`.
type TagOptions struct {
	// ForceTag replaces an existing tag VERSION (locally; the remote's is
	// replaced when upload pushes with --force-push-tag).
	ForceTag bool
	// NoCheckGit skips the checks of the working tree, the official flag
	// and the tag's existence (SPEC §6.1). The version is validated and
	// HEAD must be on a branch regardless: the first keeps unsafe names
	// away from git, the second is where the release is merged back.
	NoCheckGit bool
	// Progress receives one line per step (nil: silent).
	Progress io.Writer
	// Environment is the environment whose release_key signs the tag
	// ("": the default environment; one without a release_key: unsigned).
	Environment string
	// AllowInsecureKey accepts a release key file others may read.
	AllowInsecureKey bool
}

// Problem is one failed precondition and how to fix it.
type Problem struct {
	Check string `json:"check"`
	Msg   string `json:"message"`
	Fix   string `json:"fix"`
}

// PreflightError lists every precondition of `releng tag` that failed.
type PreflightError struct {
	Problems []Problem
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("cannot tag: ")
	} else {
		fmt.Fprintf(&b, "cannot tag, %d problems:", len(e.Problems))
	}
	for i, p := range e.Problems {
		if len(e.Problems) > 1 {
			fmt.Fprintf(&b, "\n  %d. ", i+1)
		}
		b.WriteString(p.Msg)
		if p.Fix != "" {
			if len(e.Problems) > 1 {
				b.WriteString("\n     fix: ")
			} else {
				b.WriteString("\n  fix: ")
			}
			b.WriteString(p.Fix)
		}
	}
	return b.String()
}

// Has reports whether the check named check failed.
func (e *PreflightError) Has(check string) bool {
	for _, p := range e.Problems {
		if p.Check == check {
			return true
		}
	}
	return false
}

// The names of the preconditions, as in Problem.Check.
const (
	CheckDetached   = "detached-head"
	CheckMerge      = "merge-in-progress"
	CheckUntracked  = "version-file-untracked"
	CheckDirty      = "dirty"
	CheckOfficial   = "official-release"
	CheckTagLocal   = "tag-exists"
	CheckTagRemote  = "tag-on-remote"
	CheckRemoteDown = "remote-unreachable"
)

// ValidateVersion checks that the release version can be handed to git,
// paths and URLs: a PEP 440 version (SPEC §5) made only of safe
// characters, and a tag name git accepts. It runs before anything else
// sees the version; its error is a *versionfile.Error (exit 2).
func ValidateVersion(ctx context.Context, vf *versionfile.File) error {
	v := vf.Version
	if _, err := version.Parse(v); err != nil {
		return &versionfile.Error{Path: vf.Path, Msg: fmt.Sprintf("%v; set \"version\" to a release version such as \"2.93.0\"", err)}
	}
	if err := versionfile.ValidateTag(v); err != nil {
		return &versionfile.Error{Path: vf.Path, Msg: err.Error()}
	}
	if err := gitx.CheckRefName(ctx, "tag", v); err != nil {
		return &versionfile.Error{Path: vf.Path, Msg: fmt.Sprintf("version %q is not a valid git tag name: %v", v, err)}
	}
	if _, err := version.Major(v); err != nil {
		return &versionfile.Error{Path: vf.Path, Msg: fmt.Sprintf("version %q has no MAJOR (two dot-separated components, e.g. 2.93.0): %v", v, err)}
	}
	return nil
}

// remoteName returns [git].remote after checking it is a safe remote name.
func remoteName(ctx context.Context, p *project.Project) (string, error) {
	name := p.Config.Git.Remote
	if err := gitx.CheckRefName(ctx, "remote", name); err != nil {
		return "", &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("[git] remote: %v", err)}
	}
	return name, nil
}

// mainBranch returns [git].main_branch after checking it.
func mainBranch(ctx context.Context, p *project.Project) (string, error) {
	name := p.Config.Git.MainBranch
	if err := gitx.CheckRefName(ctx, "branch", name); err != nil {
		return "", &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("[git] main_branch: %v", err)}
	}
	return name, nil
}

// Preflight checks the preconditions of `releng tag` (SPEC §6.1) and
// returns a *PreflightError listing every one that failed, or a
// *versionfile.Error / *config.Error for input that must not reach git.
// It re-reads the version file, so what is checked is what is on disk.
func Preflight(ctx context.Context, p *project.Project, opts TagOptions) error {
	vf, err := versionfile.Read(p.Root, p.Version.Path)
	if err != nil {
		return err
	}
	if err := ValidateVersion(ctx, vf); err != nil {
		return err
	}
	v := vf.Version
	remote, err := remoteName(ctx, p)
	if err != nil {
		return err
	}
	repo := p.Git
	var probs []Problem
	add := func(check, msg, fix string) { probs = append(probs, Problem{Check: check, Msg: msg, Fix: fix}) }

	// Never skipped: without a branch there is nothing to merge back into,
	// and a merge in progress would be aborted by a rollback.
	branch, err := repo.Branch(ctx)
	if err != nil {
		return err
	}
	if branch == "" {
		head, _ := repo.Head(ctx)
		tagged, _ := repo.TagCommit(ctx, v)
		if head != "" && head == tagged {
			add(CheckDetached, fmt.Sprintf("HEAD is detached on tag %s: this release is already tagged", v),
				"continue with `releng build`; to tag again, switch back to the release branch (see release/state/prev-branch) and bump the version, or use --force-tag")
		} else {
			add(CheckDetached, fmt.Sprintf("HEAD is detached (at %s), not on a branch", short(head)),
				fmt.Sprintf("switch to the branch to release from, e.g. `git switch %s` (or the maintenance branch), then run releng tag again", p.Config.Git.MainBranch))
		}
	}
	if repo.MergeInProgress(ctx) {
		add(CheckMerge, "a merge is in progress", "finish it with `git commit` or abandon it with `git merge --abort`")
	}
	rel, err := relToRepo(repo, vf.Path)
	if err != nil {
		return &versionfile.Error{Path: vf.Path, Msg: err.Error()}
	}
	if err := repo.Run(ctx, "ls-files", "--error-unmatch", "--", rel); err != nil {
		add(CheckUntracked, fmt.Sprintf("%s is not tracked by git", rel),
			fmt.Sprintf("commit it first: `git add %s && git commit`", rel))
	}

	if !opts.NoCheckGit {
		dirty, err := repo.Dirty(ctx)
		if err != nil {
			return err
		}
		if len(dirty) > 0 {
			shown := dirty
			if len(shown) > 10 {
				shown = append(shown[:10:10], fmt.Sprintf("… and %d more", len(dirty)-10))
			}
			add(CheckDirty, fmt.Sprintf("the working tree or index has uncommitted changes:\n       %s", strings.Join(shown, "\n       ")),
				"commit them, or set them aside with `git stash`, then run releng tag again (--no-check-git skips this check)")
		}
		if vf.OfficialRelease {
			add(CheckOfficial, fmt.Sprintf("%s already says \"official_release\": true", rel),
				fmt.Sprintf("set it back to false and commit (`releng tag` sets it to true on the release commit only, never on %s)", orDefault(branch, "the branch")))
		}
		if !opts.ForceTag {
			if c, err := repo.TagCommit(ctx, v); err != nil {
				return err
			} else if c != "" {
				add(CheckTagLocal, fmt.Sprintf("tag %s already exists locally (at %s)", v, short(c)),
					fmt.Sprintf("bump \"version\" in %s for a new release, delete the tag with `git tag -d %s` if it was a mistake, or pass --force-tag to move it", rel, v))
			}
			has, err := repo.HasRemote(ctx, remote)
			if err != nil {
				return err
			}
			if !has && opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "note: no git remote %q here ([git] remote): not checking whether tag %s exists there\n", remote, v)
			}
			if has {
				refs, err := repo.LsRemote(ctx, remote, "refs/tags/"+v)
				switch {
				case err != nil:
					add(CheckRemoteDown, fmt.Sprintf("could not ask remote %q whether tag %s exists: %v", remote, v, err),
						"check the network and your credentials for that remote, or pass --no-check-git to skip the git checks")
				case refs["refs/tags/"+v] != "":
					add(CheckTagRemote, fmt.Sprintf("tag %s already exists on remote %q", v, remote),
						fmt.Sprintf("this version was released already: bump \"version\" in %s; or pass --force-tag to replace it (upload then needs --force-push-tag)", rel))
				}
			}
		}
	}
	if len(probs) > 0 {
		return &PreflightError{Problems: probs}
	}
	return nil
}

// relToRepo returns path relative to the repository's top directory, with
// symlinks resolved on both sides; a path outside the repository is an
// error.
func relToRepo(repo *gitx.Repo, path string) (string, error) {
	top, err := filepath.EvalSymlinks(repo.Dir)
	if err != nil {
		top = repo.Dir
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		dir = filepath.Dir(path)
	}
	rel, err := filepath.Rel(top, filepath.Join(dir, filepath.Base(path)))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", errors.New("is outside the git repository " + repo.Dir + "; keep it inside the checkout (version_file in releng.toml)")
	}
	return filepath.ToSlash(rel), nil
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	if commit == "" {
		return "no commit"
	}
	return commit
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
