package gitflow

import (
	"context"

	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/version"
)

// Maintenance is the answer of SPEC §6.3 with the facts behind it.
type Maintenance struct {
	// Maintenance is true when the release is on a maintenance branch:
	// the main branch has a newer release than this one.
	Maintenance bool `json:"maintenance"`
	// MainRef is the remote-tracking ref that was looked at
	// (refs/remotes/REMOTE/MAIN_BRANCH), "" when it does not exist.
	MainRef string `json:"main_ref"`
	// NewestOnMain and NewestOnHead are the newest version tags reachable
	// from MainRef and from HEAD ("" when none).
	NewestOnMain string `json:"newest_on_main"`
	NewestOnHead string `json:"newest_on_head"`
}

// Newest returns the newest of tags by PEP 440 order (SPEC §5), ignoring
// tags that are not versions; "" when there is none.
func Newest(tags []string) string {
	var best string
	var bestV version.PEP440
	for _, t := range tags {
		v, err := version.Parse(t)
		if err != nil {
			continue
		}
		if best == "" || version.Compare(v, bestV) > 0 {
			best, bestV = t, v
		}
	}
	return best
}

// IsMaintenance decides SPEC §6.3 from tag lists: releasing is on a
// maintenance branch when the newest version among mainTags (reachable
// from REMOTE/main_branch) is newer than the newest among headTags
// (reachable from HEAD) and releasing itself. Counting releasing makes the
// answer the same before `releng tag` (HEAD does not have the tag yet) and
// after it. With no version on main, it is not a maintenance release.
func IsMaintenance(mainTags, headTags []string, releasing string) bool {
	main := Newest(mainTags)
	if main == "" {
		return false
	}
	here := Newest(append(append([]string(nil), headTags...), releasing))
	if here == "" {
		return true
	}
	mv, _ := version.Parse(main)
	hv, _ := version.Parse(here)
	return version.Compare(mv, hv) > 0
}

// DetectMaintenance answers SPEC §6.3 for the project from local refs
// only: refs/remotes/REMOTE/MAIN_BRANCH as of the last fetch (run
// `git fetch REMOTE` first for an up-to-date answer). A missing remote or
// branch means it is not a maintenance release.
func DetectMaintenance(ctx context.Context, p *project.Project) (*Maintenance, error) {
	remote, err := remoteName(ctx, p)
	if err != nil {
		return nil, err
	}
	main, err := mainBranch(ctx, p)
	if err != nil {
		return nil, err
	}
	return detectMaintenance(ctx, p.Git, "refs/remotes/"+remote+"/"+main, p.Version.Version)
}

func detectMaintenance(ctx context.Context, repo *gitx.Repo, mainRef, releasing string) (*Maintenance, error) {
	m := &Maintenance{}
	c, err := repo.RevParse(ctx, mainRef+"^{commit}")
	if err != nil {
		return nil, err
	}
	if c == "" {
		return m, nil
	}
	m.MainRef = mainRef
	mainTags, err := repo.TagsMerged(ctx, mainRef)
	if err != nil {
		return nil, err
	}
	var headTags []string
	if h, _ := repo.Head(ctx); h != "" {
		if headTags, err = repo.TagsMerged(ctx, "HEAD"); err != nil {
			return nil, err
		}
	}
	m.NewestOnMain = Newest(mainTags)
	m.NewestOnHead = Newest(headTags)
	m.Maintenance = IsMaintenance(mainTags, headTags, releasing)
	return m, nil
}
