package release

import (
	"context"
	"sort"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/runctx"
)

// cacheStage pushes the closures of the jobs to the binary cache (SPEC §10.2 step 1).
type cacheStage struct{}

func (cacheStage) Name() string { return "cache" }

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

func (cacheStage) Plan(ctx context.Context, r *run) (*plan.Plan, error) {
	if r.t.CacheURI == nil {
		return &plan.Plan{Skipped: "no cache configured"}, nil
	}
	if r.from != nil {
		return r.planCacheCopy(ctx)
	}
	infos, err := cacheClosure(ctx, r.p.Config, r.rec, r.opts.NixEnv)
	if err != nil {
		return nil, err
	}
	cp, err := binarycache.PlanPush(ctx, binarycache.PushOptions{URI: r.t.CacheURI, Bucket: r.t.Cache, Paths: infos})
	if err != nil {
		return nil, err
	}
	cp.Plan.State = cp
	return cp.Plan, nil
}

func (cacheStage) Run(ctx context.Context, r *run, pl *plan.Plan) (Published, error) {
	keys, err := r.t.SigningKeys(r.p, r.opts.AllowInsecureKey)
	if err != nil {
		return Published{}, err
	}
	if cp, ok := pl.State.(*binarycache.CopyPlan); ok {
		return r.runCacheCopy(ctx, cp, keys)
	}
	if len(keys) == 0 {
		r.rc.Warnf("cache", "no signing key for %s: the cache's narinfos are not signed", r.t.Env.Name)
	}
	cp := pl.State.(*binarycache.Plan)
	var jerr error
	sum, err := binarycache.Push(ctx, binarycache.PushOptions{URI: r.t.CacheURI, Bucket: r.t.Cache, Keys: keys, Plan: cp, OnEvent: r.cacheEvent(&jerr)})
	return r.cachePublished(sum, err, jerr)
}

// cacheEvent journals a narinfo written to the cache and reports it.
func (r *run) cacheEvent(jerr *error) func(binarycache.Event) {
	return func(e binarycache.Event) {
		if e.Kind != binarycache.EventPublished {
			return
		}
		r.rc.Emit(runctx.Event{Kind: runctx.Object, Stage: "cache", Object: e.Path.String(), Bytes: e.FileSize})
		if err := r.j.Append(journal.Entry{Kind: "object", Step: "cache", Key: bucket.ObjectURL(r.t.Cache, binarycache.NarInfoKey(e.Path))}); err != nil && *jerr == nil {
			*jerr = err
		}
	}
}

// cachePublished is what a push or copy to the cache did.
func (r *run) cachePublished(sum *binarycache.Summary, err, jerr error) (Published, error) {
	if err == nil {
		err = jerr
	}
	if sum == nil {
		return Published{}, err
	}
	for _, l := range sum.LeftoversRemoved {
		r.rc.Infof("cache", "removed %s left by an interrupted run", l)
	}
	if sum.LeftoversError != "" {
		r.rc.Warnf("cache", "could not remove what interrupted runs left in %s: %s", r.t.Cache, sum.LeftoversError)
	}
	return Published{Objects: sum.Paths, Sent: sum.Pushed, Bytes: sum.BytesOut}, err
}

// Verify reads back every path of the plan through the one cache reader.
func (cacheStage) Verify(ctx context.Context, r *run, pl *plan.Plan) []Check {
	keys, err := r.t.VerifyKeys(r.p)
	if err != nil {
		return []Check{{What: "cache", Object: r.t.CacheURI.Raw, Detail: err.Error()}}
	}
	cp := pl.State.(interface{ Paths() []nixstore.StorePath })
	var checks []Check
	for _, pc := range binarycache.Verify(ctx, binarycache.VerifyOptions{URI: r.t.CacheURI, Bucket: r.t.Cache, Keys: keys, Paths: cp.Paths()}) {
		checks = append(checks, Check{What: "cache", Object: pc.Path, OK: len(pc.Problems) == 0, Detail: strings.Join(pc.Problems, "; ")})
	}
	return checks
}
