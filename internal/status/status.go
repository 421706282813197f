// Package status collects what releng knows locally about a release: the
// version file, the git state, the artifacts and, per environment, what the
// journal records. It never contacts a server or runs credentials_command.
package status

import (
	"context"

	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/project"
)

// Status is the report of `releng status` (its JSON shape is documented in
// docs/json.md).
type Status struct {
	Name            string        `json:"name"`
	Version         string        `json:"version"`
	Major           string        `json:"major"`
	OfficialRelease bool          `json:"official_release"`
	ReleaseName     string        `json:"release_name"`
	Prerelease      bool          `json:"prerelease"`
	Git             Git           `json:"git"`
	Artifacts       Artifacts     `json:"artifacts"`
	Environments    []Environment `json:"environments"`
}

// Git is the state of the checkout.
type Git struct {
	Branch    string `json:"branch"`
	Detached  bool   `json:"detached"`
	Head      string `json:"head"`
	OnTag     bool   `json:"on_tag"`
	TagCommit string `json:"tag_commit"`
	// TagElsewhere: tag VERSION exists, at another commit than HEAD.
	TagElsewhere bool `json:"tag_elsewhere"`
	Clean        bool `json:"clean"`
	Changed      int  `json:"changed_files"`
	// PrevBranch is the branch `releng tag` started from ("" before it ran).
	PrevBranch string `json:"prev_branch"`
	// Remote is [git].remote; RemoteFetched says it has remote-tracking
	// refs, TagOnRemote that the tag's commit is in their history: local
	// knowledge as of the last fetch, status never contacts the remote.
	Remote        string `json:"remote"`
	RemoteFetched bool   `json:"remote_fetched"`
	TagOnRemote   bool   `json:"tag_on_remote"`
	// Maintenance is SPEC §6.3 (from REMOTE/main_branch as of the last
	// fetch); NewestOnMain is the newest version tag there.
	Maintenance  bool   `json:"maintenance"`
	MainRef      string `json:"main_ref"`
	NewestOnMain string `json:"newest_on_main"`
}

// Collect gathers the status of p from local state only.
func Collect(ctx context.Context, p *project.Project) (*Status, error) {
	v := p.Version
	st := &Status{
		Name:            p.Config.Name,
		Version:         v.Version,
		Major:           v.Major(),
		OfficialRelease: v.OfficialRelease,
		ReleaseName:     v.ReleaseName,
		Prerelease:      v.IsPrerelease(),
	}
	var err error
	g := &st.Git
	if g.Branch, err = p.Git.Branch(ctx); err != nil {
		return nil, err
	}
	g.Detached = g.Branch == ""
	if g.Head, err = p.Git.Head(ctx); err != nil {
		return nil, err
	}
	if g.TagCommit, err = p.Git.TagCommit(ctx, v.Version); err != nil {
		return nil, err
	}
	g.OnTag = g.Head != "" && g.Head == g.TagCommit
	g.TagElsewhere = g.TagCommit != "" && !g.OnTag
	dirty, err := p.Git.Dirty(ctx)
	if err != nil {
		return nil, err
	}
	g.Clean, g.Changed = len(dirty) == 0, len(dirty)
	if err := collectGitFlow(ctx, p, g); err != nil {
		return nil, err
	}

	st.Artifacts = collectArtifacts(p.ReleaseDir(), g.Head, v.Version)
	built := ""
	if st.Artifacts.Built {
		built = st.Name + " " + st.Artifacts.Version + " " + st.Artifacts.Commit
	}
	st.Environments = []Environment{}
	for _, name := range p.Config.EnvironmentNames() {
		st.Environments = append(st.Environments, collectEnvironment(p, p.Config.Environments[name], built))
	}
	return st, nil
}

// collectGitFlow adds the release-flow facts: remembered branch, the tag on
// the remote and maintenance, all from local refs.
func collectGitFlow(ctx context.Context, p *project.Project, g *Git) error {
	var err error
	if g.PrevBranch, err = gitflow.PrevBranch(p); err != nil {
		return err
	}
	rt, err := gitflow.TagOnRemoteLocally(ctx, p, g.TagCommit)
	if err != nil {
		return err
	}
	g.Remote, g.RemoteFetched, g.TagOnRemote = rt.Remote, rt.Fetched, rt.Present
	m, err := gitflow.DetectMaintenance(ctx, p)
	if err != nil {
		return err
	}
	g.Maintenance, g.MainRef, g.NewestOnMain = m.Maintenance, m.MainRef, m.NewestOnMain
	return nil
}
