package closure

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixstore"
)

// cacheFetches is how many narinfos FromCache reads at once (the bucket's
// own concurrency limit applies below it).
const cacheFetches = 32

// FromCache returns the path information of the closure of roots as the
// binary cache in b describes it: each path's narinfo (References,
// NarSize, NarHash) read once, breadth first, with no local Nix. what
// names the roots in errors (e.g. "manifest.nix of hello 1.0.0").
func FromCache(ctx context.Context, b bucket.Bucket, roots []nixstore.StorePath, what string) ([]nixstore.PathInfo, error) {
	seen := map[string]bool{}
	type want struct{ path, from nixstore.StorePath }
	var level []want
	for _, r := range roots {
		if !seen[r.String()] {
			seen[r.String()] = true
			level = append(level, want{path: r})
		}
	}
	var infos []nixstore.PathInfo
	for len(level) > 0 {
		got := make([]*nixstore.NarInfo, len(level))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(cacheFetches)
		for i, w := range level {
			g.Go(func() error {
				from := what
				if !w.from.IsZero() {
					from = "a reference of " + w.from.String()
				}
				ni, err := readNarInfo(gctx, b, w.path, from)
				got[i] = ni
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		var next []want
		for _, ni := range got {
			infos = append(infos, nixstore.PathInfo{Path: ni.StorePath, NarHash: ni.NarHash, NarSize: ni.NarSize, References: ni.References, Deriver: ni.Deriver, Signatures: ni.Sigs, CA: ni.CA})
			for _, ref := range ni.References {
				if !seen[ref.String()] {
					seen[ref.String()] = true
					next = append(next, want{path: ref, from: ni.StorePath})
				}
			}
		}
		level = next
	}
	slices.SortFunc(infos, func(a, b nixstore.PathInfo) int { return strings.Compare(a.Path.String(), b.Path.String()) })
	return infos, nil
}

// readNarInfo reads and parses the narinfo of sp; from says why it is
// wanted.
func readNarInfo(ctx context.Context, b bucket.Bucket, sp nixstore.StorePath, from string) (*nixstore.NarInfo, error) {
	key := binarycache.NarInfoKey(sp)
	url := bucket.ObjectURL(b, key)
	data, err := binarycache.FetchBody(ctx, b, key, fsutil.MaxNarinfo)
	if errors.Is(err, bucket.ErrNotFound) || errors.Is(err, bucket.ErrForbidden) {
		return nil, fmt.Errorf("the cache %s has no narinfo for %s (%s): %s is missing", b, sp, from, url)
	}
	if err != nil {
		return nil, err
	}
	ni, err := nixstore.ParseNarInfo(data, url, sp.Dir)
	if err != nil {
		return nil, err
	}
	if ni.StorePath != sp {
		return nil, fmt.Errorf("%s describes %s, not %s", url, ni.StorePath, sp)
	}
	return ni, nil
}

// Set is the closure of some roots: the path information that holds it,
// and a name for the roots in reports (a store path, or VERSION@ENV).
type Set struct {
	Name  string
	Roots []nixstore.StorePath
	Infos []nixstore.PathInfo
}

// closure returns the paths of s's closure.
func (s Set) closure() ([]nixstore.PathInfo, error) {
	return binarycache.Closure(s.Infos, s.Roots, "the path information")
}
