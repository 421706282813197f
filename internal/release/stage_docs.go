package release

import (
	"context"
	"strings"

	"github.com/releng-project/releng/internal/plan"
)

// docsStage mirrors the manual to the docs bucket (step 4).
type docsStage struct{}

func (docsStage) Name() string { return "docs" }

// DocsPrefixes are where the manual goes: manual/NAME/MAJOR/ for an official
// release (and manual/NAME/stable/ for a stable one: not a pre-release, not
// on a maintenance branch), manual/NAME/nightly/ otherwise.
func DocsPrefixes(name, major string, official, stable bool) []string {
	if !official {
		return []string{manualPrefix(name, "nightly")}
	}
	prefixes := []string{manualPrefix(name, major)}
	if stable {
		prefixes = append(prefixes, manualPrefix(name, "stable"))
	}
	return prefixes
}

// manualPrefix is where the docs bucket holds a manual: manual/NAME/WHICH/,
// WHICH being a major, "nightly" or "stable" — the one place it is spelled.
func manualPrefix(name, which string) string { return "manual/" + name + "/" + which + "/" }

// Plan mirrors each prefix exactly: one listing per prefix says what is
// there; what is no longer in the manual is deleted.
func (docsStage) Plan(ctx context.Context, r *run) (*plan.Plan, error) {
	if r.t.Docs == nil {
		return &plan.Plan{Skipped: "no docs bucket configured"}, nil
	}
	var manual []fileObject
	for _, f := range r.rec.Files {
		if rel, ok := strings.CutPrefix(f.Path, "manual/"); ok {
			manual = append(manual, fileObject{key: rel, file: f})
		}
	}
	if len(manual) == 0 {
		return &plan.Plan{Skipped: "no manual was built"}, nil
	}
	pl := &plan.Plan{Dest: r.t.Docs.String()}
	for _, prefix := range DocsPrefixes(r.rec.Name, r.rec.Major, r.official, r.stable) {
		files := make([]fileObject, len(manual))
		for i, f := range manual {
			files[i] = fileObject{key: prefix + f.key, file: f.file}
		}
		if err := r.planFiles(ctx, pl, r.t.Docs, files, prefix); err != nil {
			return nil, err
		}
	}
	return pl, nil
}

func (docsStage) Run(ctx context.Context, r *run, pl *plan.Plan) (Published, error) {
	return r.runFiles(ctx, pl, r.t.Docs)
}

func (docsStage) Verify(ctx context.Context, r *run, pl *plan.Plan) []Check {
	return verifyFiles(ctx, r.t.Docs, pl)
}
