package binarycache

import (
	"context"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/plan"
)

// removeLeftovers removes, once a push has completed, what interrupted
// pushes left in the cache for the plan's objects (bucket.Cleaner): the
// multipart uploads of its NARs (a NAR of unknown compressed size goes up
// in parts when it may exceed bucket.MinPartSize) and the temporary files
// of a file:// cache in nar/ and beside the narinfos. `cache push` takes
// no lock, so on S3, where nothing tells a live upload from an abandoned
// one, only uploads started before this push are aborted; a directory's
// temporary files are removed only when no live writer holds them.
// It returns what it removed and why it could not, if so.
func (p *pusher) removeLeftovers(ctx context.Context, pl *Plan, start time.Time) ([]string, string) {
	narSize := make(map[string]uint64, len(pl.infos))
	for _, pi := range pl.infos {
		narSize[pi.Path.String()] = pi.NarSize
	}
	pushed := make(map[string]bool, len(pl.items))
	for _, it := range pl.items {
		pushed[it.pi.Path.String()] = true
	}
	objs := make([]bucket.ObjectInfo, 0, len(pl.Objects))
	for _, o := range pl.Objects {
		// Only the paths this push writes: an interrupted push leaves
		// its leftovers under paths whose narinfo is missing, which the
		// next push writes; asking about every path of the closure would
		// cost a listing per NAR of a push that sends nothing.
		if !pushed[o.Source] && o.Kind != plan.KindCacheInfo {
			continue
		}
		size := int64(0) // narinfo, listing, nix-cache-info: one PUT
		if o.Kind == plan.KindNAR {
			size = o.Size
			if size < 0 {
				size = narBound(narSize[o.Source])
			}
		}
		objs = append(objs, bucket.ObjectInfo{Key: o.Key, Size: size})
	}
	removed, err := bucket.RemoveLeftovers(ctx, p.b, objs, start)
	var out []string
	for _, l := range removed {
		what := " (temporary file)"
		if l.UploadID != "" {
			what = " (multipart upload " + l.UploadID + ")"
		}
		out = append(out, bucket.ObjectURL(p.b, l.Key)+what)
	}
	if err != nil {
		return out, p.storeErr(err).Error()
	}
	return out, ""
}

// narBound is the most bytes the compressed NAR of narSize bytes can
// take (the size hint of its Put).
func narBound(narSize uint64) int64 {
	return int64(narSize) + int64(narSize)/64 + 1<<20
}
