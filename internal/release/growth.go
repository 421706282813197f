package release

import (
	"context"
	"fmt"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/closure"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
)

// GrowthError is a release whose closure grew more than [checks]
// max_closure_growth allows.
type GrowthError struct {
	Limit   string
	Allowed int64
	Diff    *closure.Diff
}

func (e *GrowthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the release's closure grew by %s against %s, more than checks.max_closure_growth = %q allows (%s):\n\n",
		plan.Size(e.Diff.Delta), e.Diff.Old.Path, e.Limit, plan.Size(e.Allowed))
	e.Diff.WriteText(&b)
	b.WriteString("\nremove what the diff shows was added by mistake, or raise checks.max_closure_growth in releng.toml")
	return b.String()
}

// checkGrowth compares the closure of the paths manifest.nix names (from
// the local store) with that of the latest release published to the
// default environment before this version (SPEC §3.7). A first release,
// or an environment that cannot be read, is a warning unless strict.
func checkGrowth(ctx context.Context, p *project.Project, rec *artifacts.Record, opts BuildOptions) error {
	limit := p.Config.Checks.MaxClosureGrowth
	if limit == "" {
		return nil
	}
	pct, size, err := config.ParseGrowth(limit)
	if err != nil {
		return &config.Error{File: p.Config.Path, Msg: "checks.max_closure_growth: " + err.Error()}
	}
	var roots []string
	for _, out := range rec.Manifest {
		roots = append(roots, out)
	}
	infos, sps, err := closure.Load(ctx, binarycache.Source{Nix: nixstore.Nix{Env: opts.NixEnv}}, roots)
	if err != nil {
		return fmt.Errorf("checks.max_closure_growth: the closure of manifest.nix: %w", err)
	}
	envName := p.Config.DefaultEnvironment
	skip := func(format string, args ...any) error {
		why := fmt.Sprintf(format, args...)
		if opts.Strict {
			return fmt.Errorf("checks.max_closure_growth cannot be checked (--strict): %s", why)
		}
		opts.Run.Warnf("build", "checks.max_closure_growth not checked: %s", why)
		return nil
	}
	t, err := OpenTarget(ctx, p, envName, TargetOptions{NeedCredentials: true})
	if err != nil {
		return skip("the default environment %s cannot be read: %v", envName, err)
	}
	prev, err := LatestPublishedBefore(ctx, p, t, rec.Version)
	if err != nil {
		return skip("the default environment %s cannot be read: %v", envName, err)
	}
	if prev == "" {
		return skip("no release before %s is published to the default environment %s (a first release)", rec.Version, envName)
	}
	sets, err := PublishedSets(ctx, p, t, prev)
	if err != nil {
		return skip("release %s of the default environment %s cannot be read: %v", prev, envName, err)
	}
	d, err := closure.NewDiff(sets[0], closure.Set{Name: rec.Version + " (this build)", Roots: sps, Infos: infos})
	if err != nil {
		return err
	}
	allowed := size + int64(pct/100*float64(d.Old.ClosureSize))
	if d.Delta > allowed {
		return &GrowthError{Limit: limit, Allowed: allowed, Diff: d}
	}
	opts.Run.Infof("build", "closure: %s against %s, within checks.max_closure_growth = %q", signed(d.Delta), d.Old.Path, limit)
	return nil
}

func signed(n int64) string {
	if n < 0 {
		return "-" + plan.Size(-n)
	}
	return "+" + plan.Size(n)
}
