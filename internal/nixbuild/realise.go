package nixbuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// BuildError is a failed build: the job and derivation that failed, with
// the tail of the build log.
type BuildError struct {
	Attr    string
	DrvPath string
	Tail    string
}

func (e *BuildError) Error() string {
	who := e.DrvPath
	if e.Attr != "" {
		who = fmt.Sprintf("job %s (%s)", e.Attr, e.DrvPath)
	}
	return fmt.Sprintf("build of %s failed; last log lines:\n%s", who, e.Tail)
}

// RealiseOptions tune nix-store --realise.
type RealiseOptions struct {
	MaxJobs int
	Cores   int
	// GCRoots is the directory where a root per job output is made.
	GCRoots string
}

var failedDrvRe = regexp.MustCompile(`builder for '(/[^']+\.drv)' failed`)
var failedDepRe = regexp.MustCompile(`(?:dependencies couldn't be built|cannot build derivation '(/[^']+\.drv)')`)

// Realise builds every job's derivation and registers a GC root for each
// output under opts.GCRoots (named ATTR-OUTPUT).
func (n *Nix) Realise(ctx context.Context, jobs []Job, opts RealiseOptions) error {
	if len(jobs) == 0 {
		return nil
	}
	args := []string{"--realise"}
	seen := map[string]bool{}
	for _, j := range jobs {
		if !seen[j.DrvPath] {
			args = append(args, j.DrvPath)
			seen[j.DrvPath] = true
		}
	}
	if opts.MaxJobs > 0 {
		args = append(args, "--max-jobs", fmt.Sprint(opts.MaxJobs))
	}
	if opts.Cores > 0 {
		args = append(args, "--cores", fmt.Sprint(opts.Cores))
	}
	if _, err := n.run(ctx, nil, "nix-store", args...); err != nil {
		var ce *CommandError
		if errors.As(err, &ce) {
			be := &BuildError{Tail: ce.Tail}
			if m := failedDrvRe.FindStringSubmatch(ce.Tail); m != nil {
				be.DrvPath = m[1]
			} else if m := failedDepRe.FindStringSubmatch(ce.Tail); m != nil {
				be.DrvPath = m[1]
			}
			for _, j := range jobs {
				if j.DrvPath == be.DrvPath {
					be.Attr = j.Attr
				}
			}
			if be.DrvPath == "" {
				be.DrvPath = "(unknown derivation)"
			}
			return be
		}
		return err
	}
	if opts.GCRoots == "" {
		return nil
	}
	if err := os.MkdirAll(opts.GCRoots, 0o755); err != nil {
		return err
	}
	for _, j := range jobs {
		for _, out := range keys(j.Outputs) {
			root := filepath.Join(opts.GCRoots, strings.ReplaceAll(j.Attr, "/", "_")+"-"+out)
			if _, err := n.run(ctx, nil, "nix-store", "--add-root", root, "--indirect", "--realise", j.Outputs[out]); err != nil {
				return fmt.Errorf("register GC root %s: %w", root, err)
			}
		}
	}
	return nil
}
