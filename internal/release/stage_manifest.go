package release

import (
	"context"
	"errors"
	"fmt"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
)

// manifestStage writes the root manifest.nix, the `nix upgrade-nix` pointer (step 5).
type manifestStage struct{}

func (manifestStage) Name() string { return "manifest" }

func (manifestStage) Plan(ctx context.Context, r *run) (*plan.Plan, error) {
	skip := ""
	switch {
	case r.t.Releases == nil:
		skip = "no releases bucket configured"
	case !r.rec.OfficialRelease:
		skip = "not an official release"
	case r.yanked != nil && !r.opts.Unyank:
		skip = r.rec.Version + " is yanked: the root manifest.nix names another release"
	case r.p.Version.IsPrerelease():
		skip = "a pre-release does not move the root manifest.nix"
	case !r.stable:
		skip = "a maintenance release does not move the root manifest.nix"
	}
	if skip != "" {
		return &plan.Plan{Skipped: skip}, nil
	}
	for _, f := range r.rec.Files {
		if f.Path == "artifacts/manifest.nix" {
			pl := &plan.Plan{Dest: r.t.Releases.String()}
			return pl, r.planFiles(ctx, pl, r.t.Releases, []fileObject{{key: "manifest.nix", file: f}}, "")
		}
	}
	return nil, errors.New("release/build.json lists no artifacts/manifest.nix: run `releng build` again")
}

// Run writes the root manifest.nix only after checking the cache has a
// narinfo for every path it names.
func (manifestStage) Run(ctx context.Context, r *run, pl *plan.Plan) (Published, error) {
	if r.t.Cache != nil {
		for sys, p := range r.rec.Manifest {
			sp, err := nixstore.ParseStorePath(nixstore.DefaultStoreDir, p)
			if err != nil {
				return Published{}, fmt.Errorf("manifest %s: %w", sys, err)
			}
			if ok, err := bucket.Exists(ctx, r.t.Cache, binarycache.NarInfoKey(sp), true); err != nil {
				return Published{}, err
			} else if !ok {
				return Published{}, fmt.Errorf("the cache %s has no narinfo for %s (%s): the root manifest.nix is not written", r.t.CacheURI.Raw, p, sys)
			}
		}
	}
	return r.runFiles(ctx, pl, r.t.Releases)
}

func (manifestStage) Verify(ctx context.Context, r *run, pl *plan.Plan) []Check {
	return verifyFiles(ctx, r.t.Releases, pl)
}
