package nixbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	// The named roots are added below, once every output exists.
	quiet := *n
	if n.Log != nil {
		quiet.Log = &dropLines{w: n.Log, drop: "you did not specify '--add-root'"}
	}
	if _, err := quiet.run(ctx, nil, "nix-store", args...); err != nil {
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
			root := filepath.Join(opts.GCRoots, GCRootName(j, out))
			if _, err := n.run(ctx, nil, "nix-store", "--add-root", root, "--indirect", "--realise", j.Outputs[out]); err != nil {
				return fmt.Errorf("register GC root %s: %w", root, err)
			}
		}
	}
	return nil
}

// dropLines forwards writes to w, leaving out lines that contain drop.
type dropLines struct {
	w       io.Writer
	drop    string
	partial []byte
}

func (d *dropLines) Write(p []byte) (int, error) {
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := d.partial[:i+1]
		if !bytes.Contains(line, []byte(d.drop)) {
			if _, err := d.w.Write(line); err != nil {
				return len(p), err
			}
		}
		d.partial = d.partial[i+1:]
	}
}

// GCRootName is the name of the GC root of output out of job j under
// RealiseOptions.GCRoots: ATTR-OUTPUT.
func GCRootName(j Job, out string) string {
	return strings.ReplaceAll(j.Attr, "/", "_") + "-" + out
}
