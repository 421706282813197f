package release

import (
	"context"

	"strings"

	"github.com/releng-project/releng/internal/bucket"

	"github.com/releng-project/releng/internal/plan"
)

// releasesStage copies the version directory to the releases bucket (step 3).
type releasesStage struct{}

func (releasesStage) Name() string { return "releases" }

func (releasesStage) Plan(ctx context.Context, r *run) (*plan.Plan, error) {
	if r.t.Releases == nil {
		return &plan.Plan{Skipped: "no releases bucket configured"}, nil
	}
	pl := &plan.Plan{Dest: r.t.Releases.String()}
	var files []fileObject
	prefix := r.rec.VersionDir + "/"
	for _, f := range r.rec.Files {
		if strings.HasPrefix(f.Path, prefix) {
			files = append(files, fileObject{key: strings.TrimPrefix(f.Path, "artifacts/"), file: f})
		}
	}
	if err := r.planFiles(ctx, pl, r.t.Releases, files, ""); err != nil {
		return nil, err
	}
	if r.yanked != nil && r.opts.Unyank {
		// --unyank: the version is published again, yanked.json goes.
		for _, key := range []string{yankedKey(r.rec.Name, r.rec.Version), yankedKey(r.rec.Name, r.rec.Version) + ".sig"} {
			if ok, err := bucket.Exists(ctx, r.t.Releases, key, true); err != nil {
				return nil, err
			} else if ok {
				pl.Add(plan.Object{Dest: r.t.Releases.String(), Key: key, Kind: plan.KindFile, Why: plan.Delete, Detail: "--unyank"})
			}
		}
	}
	return pl, r.planSumsSignature(ctx, pl, r.t.Releases)
}

func (releasesStage) Run(ctx context.Context, r *run, pl *plan.Plan) (Published, error) {
	return r.runFiles(ctx, pl, r.t.Releases)
}

func (releasesStage) Verify(ctx context.Context, r *run, pl *plan.Plan) []Check {
	return r.verifyReleases(ctx, r.t.Releases, pl)
}
