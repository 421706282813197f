package release

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
)

// docsStage mirrors the manual to the docs bucket (step 4).
type docsStage struct{}

func (docsStage) Name() string { return "docs" }
func (docsStage) Skip(u *upload) string {
	if u.t.Docs == nil {
		return "no docs bucket configured"
	}
	for _, f := range u.rec.Files {
		if strings.HasPrefix(f.Path, "manual/") {
			return ""
		}
	}
	return "no manual was built"
}

// DocsPrefixes are where the manual goes: manual/NAME/MAJOR/ for an official
// release (and manual/NAME/stable/ for a stable one: not a pre-release, not
// on a maintenance branch), manual/NAME/nightly/ otherwise.
func DocsPrefixes(name, major string, official, stable bool) []string {
	if !official {
		return []string{"manual/" + name + "/nightly/"}
	}
	prefixes := []string{"manual/" + name + "/" + major + "/"}
	if stable {
		prefixes = append(prefixes, "manual/"+name+"/stable/")
	}
	return prefixes
}

func (docsStage) Run(ctx context.Context, u *upload) (Published, error) {
	pub := Published{Where: u.t.Docs.String()}
	for _, prefix := range DocsPrefixes(u.rec.Name, u.rec.Major, u.official, u.stableAlias) {
		want := map[string]bool{}
		for _, f := range u.rec.Files {
			rel, ok := strings.CutPrefix(f.Path, "manual/")
			if !ok {
				continue
			}
			want[prefix+rel] = true
			sent, err := u.putFile(ctx, u.t.Docs, prefix+rel, filepath.Join(u.p.ReleaseDir(), f.Path), f)
			if err != nil {
				return pub, err
			}
			pub.Objects++
			if sent {
				pub.Sent++
				pub.Bytes += f.Size
			}
		}
		// Mirror exactly: what is no longer in the manual goes.
		existing, err := u.t.Docs.List(ctx, prefix, bucket.ListOptions{Recursive: true})
		if err != nil {
			return pub, err
		}
		for _, o := range existing {
			if !want[o.Key] && !o.IsPrefix {
				if err := u.t.Docs.Delete(ctx, o.Key); err != nil {
					return pub, err
				}
			}
		}
	}
	return pub, nil
}
