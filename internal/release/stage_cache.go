package release

import (
	"context"
	"sort"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/nixstore"
)

// cacheStage pushes the closures of the jobs to the binary cache (SPEC §10.2 step 1).
type cacheStage struct{}

func (cacheStage) Name() string { return "cache" }
func (cacheStage) Skip(u *upload) string {
	if u.t.CacheURI == nil {
		return "no cache configured"
	}
	return ""
}

// CacheRoots are the store paths the cache step pushes the closures of:
// every job's derivation and outputs, minus cache_exclude_jobs.
func CacheRoots(cfg *config.Config, rec *artifacts.Record) (drvs, outputs []string) {
	for _, j := range rec.Jobs {
		excluded := false
		for _, x := range cfg.Build.CacheExcludeJobs {
			if j.Attr == x || strings.HasPrefix(j.Attr, x+".") {
				excluded = true
			}
		}
		if excluded {
			continue
		}
		drvs = append(drvs, j.DrvPath)
		for _, o := range j.Outputs {
			outputs = append(outputs, o)
		}
	}
	sort.Strings(drvs)
	sort.Strings(outputs)
	return drvs, outputs
}

// cacheClosure is the path information of the closures of the jobs'
// derivations (with their sources) and of their outputs, each path once.
func cacheClosure(ctx context.Context, cfg *config.Config, rec *artifacts.Record, nixEnv []string) ([]nixstore.PathInfo, error) {
	drvs, outputs := CacheRoots(cfg, rec)
	var all []nixstore.PathInfo
	seen := map[string]bool{}
	for _, part := range []struct {
		derivation bool
		roots      []string
	}{{true, drvs}, {false, outputs}} {
		if len(part.roots) == 0 {
			continue
		}
		infos, err := binarycache.LoadClosure(ctx, binarycache.Source{Nix: nixstore.Nix{Env: nixEnv, Derivation: part.derivation}}, part.roots)
		if err != nil {
			return nil, err
		}
		for _, pi := range infos {
			if !seen[pi.Path.String()] {
				seen[pi.Path.String()] = true
				all = append(all, pi)
			}
		}
	}
	return all, nil
}

func (cacheStage) Run(ctx context.Context, u *upload) (Published, error) {
	keys, err := u.t.SigningKeys(u.p, u.opts.AllowInsecureKey)
	if err != nil {
		return Published{}, err
	}
	if len(keys) == 0 {
		u.say("warning: no signing key for %s: the cache's narinfos are not signed", u.t.Env.Name)
	}
	infos, err := cacheClosure(ctx, u.p.Config, u.rec, u.opts.NixEnv)
	if err != nil {
		return Published{}, err
	}
	sum, err := binarycache.Push(ctx, binarycache.PushOptions{URI: u.t.CacheURI, Bucket: u.t.Cache, Paths: infos, Keys: keys})
	if err != nil {
		return Published{}, err
	}
	return Published{Where: u.t.CacheURI.Raw, Objects: sum.Paths, Sent: sum.Pushed, Bytes: sum.BytesOut}, nil
}
