package release

import (
	"context"
	"fmt"
	"sort"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
)

// Check is one line of verify's table.
type Check struct {
	What   string `json:"what"`
	Object string `json:"object"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// VerifyReport is the result of `releng verify`.
type VerifyReport struct {
	Environment string  `json:"environment"`
	Version     string  `json:"version"`
	Checks      []Check `json:"checks"`
	Failed      int     `json:"failed"`
	// Yanked is the version's yanked.json in the environment, if any.
	Yanked *YankRecord `json:"yanked,omitempty"`
}

// VerifyOptions are the flags of `releng verify`.
type VerifyOptions struct {
	Environment string
	Target      string // "all" (default) or "manual"
	// NixEnv is appended to the environment of Nix commands.
	NixEnv []string
	Run    *runctx.Run
}

// Verify reads back everything upload publishes to an environment (SPEC
// §10.6): it makes the same plans as upload and checks every object of
// them against what is published — there is no second description of what
// a stage writes. It needs no secret key.
func Verify(ctx context.Context, p *project.Project, opts VerifyOptions) (*VerifyReport, error) {
	r, err := openRun(ctx, p, UploadOptions{Environment: opts.Environment, Target: opts.Target, NixEnv: opts.NixEnv, Run: opts.Run})
	if err != nil {
		return nil, err
	}
	ctx = retry.WithOnRetry(ctx, r.onRetry)
	if r.opts.Target == "all" && r.rec.Target != "all" {
		r.opts.Target = r.rec.Target
	}
	rep := &VerifyReport{Environment: r.t.Env.Name, Version: r.rec.Version, Yanked: r.yanked}
	if y := r.yanked; y != nil {
		rep.Checks = append(rep.Checks, Check{What: "yank", Object: bucket.ObjectURL(r.t.Releases, yankedKey(r.rec.Name, y.Version)), OK: true,
			Detail: fmt.Sprintf("%s is yanked (%s, at %s): what the yank moved (%d pointers) is not checked", y.Version, y.Reason, y.Time, len(y.Moved))})
	}
	for _, s := range r.stages() {
		pl, err := s.Plan(ctx, r)
		if err != nil {
			return nil, err
		}
		if pl.Skipped != "" {
			continue
		}
		pl.Stage = s.Name()
		for _, c := range s.Verify(ctx, r, pl) {
			if !c.OK {
				rep.Failed++
			}
			rep.Checks = append(rep.Checks, c)
		}
	}
	return rep, nil
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
