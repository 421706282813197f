package release

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/nixstore"
)

// manifestStage writes the root manifest.nix, the `nix upgrade-nix` pointer (step 5).
type manifestStage struct{}

func (manifestStage) Name() string { return "manifest" }
func (manifestStage) Skip(u *upload) string {
	switch {
	case u.t.Releases == nil:
		return "no releases bucket configured"
	case !u.rec.OfficialRelease:
		return "not an official release"
	case u.p.Version.IsPrerelease():
		return "a pre-release does not move the root manifest.nix"
	case !u.stableAlias:
		return "a maintenance release does not move the root manifest.nix"
	}
	return ""
}

func (manifestStage) Run(ctx context.Context, u *upload) (Published, error) {
	pub := Published{Where: u.t.Releases.String()}
	if u.t.Cache != nil {
		for sys, p := range u.rec.Manifest {
			sp, err := nixstore.ParseStorePath(nixstore.DefaultStoreDir, p)
			if err != nil {
				return pub, fmt.Errorf("manifest %s: %w", sys, err)
			}
			if ok, err := bucket.Exists(ctx, u.t.Cache, sp.Hash+".narinfo", true); err != nil {
				return pub, err
			} else if !ok {
				return pub, fmt.Errorf("the cache %s has no narinfo for %s (%s): the root manifest.nix is not written", u.t.CacheURI.Raw, p, sys)
			}
		}
	}
	var f *artifacts.File
	for i := range u.rec.Files {
		if u.rec.Files[i].Path == "artifacts/manifest.nix" {
			f = &u.rec.Files[i]
		}
	}
	if f == nil {
		return pub, errors.New("release/build.json lists no artifacts/manifest.nix: run `releng build` again")
	}
	sent, err := u.putFile(ctx, u.t.Releases, "manifest.nix", filepath.Join(u.p.ReleaseDir(), f.Path), *f)
	pub.Objects = 1
	if sent {
		pub.Sent, pub.Bytes = 1, f.Size
	}
	return pub, err
}
