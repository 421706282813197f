package binarycache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
)

// The keys of a cache's objects: the one place they are spelled.

// NarInfoKey is the key of a path's narinfo: HASH.narinfo.
func NarInfoKey(path nixstore.StorePath) string { return path.Hash + ".narinfo" }

// ListingKey is the key of a path's NAR listing: HASH.ls.
func ListingKey(path nixstore.StorePath) string { return path.Hash + ".ls" }

// NARKey is where releng puts a NAR: named by its NarHash (so the name is
// known before the NAR is compressed), with the compression's extension.
func (u *StoreURI) NARKey(narHash nixstore.Hash) string {
	return "nar/" + nixbase32(narHash) + ".nar" + u.Extension()
}

// Plan is what a push sends: the plan of its objects (nix-cache-info, and
// per store path its NAR, listing and narinfo) and, for executing it, the
// paths to push.
type Plan struct {
	*plan.Plan
	infos     []*nixstore.PathInfo
	items     []*item // the paths whose narinfo is written
	storeDir  string
	cacheInfo []byte // nix-cache-info to write; nil when present
}

// Paths are the store paths the plan covers (the closure), for Verify.
func (pl *Plan) Paths() []nixstore.StorePath {
	out := make([]nixstore.StorePath, len(pl.infos))
	for i, pi := range pl.infos {
		out[i] = pi.Path
	}
	return out
}

// PlanPush works out what Push would send for opts.Paths: it checks the
// closure, then asks the cache, concurrently, for every path's narinfo,
// NAR and listing (a HEAD each; a narinfo whose NAR is not where releng
// names NARs is read to find its URL). A path is pushed when any of them is
// missing; a NAR already there with a known checksum (an interrupted push)
// is reused rather than sent again. Nothing is written.
func PlanPush(ctx context.Context, opts PushOptions) (*Plan, error) {
	if opts.URI == nil || opts.Bucket == nil {
		return nil, errors.New("binarycache: URI and Bucket are required")
	}
	if opts.URI.ReadOnly() {
		return nil, &URIError{URI: opts.URI.Raw, Msg: "an http(s):// cache is read-only: push to the S3 bucket behind it with s3://BUCKET?endpoint=HOST, or to file:///dir"}
	}
	p := &pusher{PushOptions: opts, uri: opts.URI, b: opts.Bucket}
	p.defaults()
	infos, err := p.validate()
	if err != nil {
		return nil, err
	}
	pl := &Plan{Plan: &plan.Plan{Stage: "cache", Dest: p.b.String()}, infos: infos, storeDir: nixstore.DefaultStoreDir}
	if len(infos) > 0 {
		pl.storeDir = infos[0].Path.Dir
	}
	p.event(Event{Kind: EventStart, Total: len(infos)})
	ci, err := p.planCacheInfo(ctx, pl.storeDir)
	if err != nil {
		return nil, err
	}
	pl.Add(ci)
	if ci.Why == plan.New {
		pl.cacheInfo = p.cacheInfoBody(pl.storeDir)
	}
	states := make([]pathState, len(infos))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.Checks)
	for i, pi := range infos {
		g.Go(func() error {
			st, err := p.statPath(gctx, pi)
			if err != nil {
				return p.storeErr(err)
			}
			states[i] = st
			p.event(Event{Kind: EventChecked, Path: pi.Path, Missing: st.push()})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var total int64
	for i, pi := range infos {
		st := states[i]
		for _, o := range st.objects(p, pi) {
			pl.Add(o)
		}
		if st.push() {
			it := &item{pi: pi, published: make(chan struct{}), url: st.narKey}
			if st.reuse {
				it.reused, it.fileHash, it.fileSize = true, st.narSHA, st.narSize
			}
			pl.items = append(pl.items, it)
			total += int64(pi.NarSize)
		}
	}
	p.event(Event{Kind: EventPlan, Total: len(pl.items), Bytes: total})
	return pl, nil
}

// pathState is what the cache holds of one path.
type pathState struct {
	narInfo    bool   // HASH.narinfo exists
	narKey     string // where the NAR is (or goes)
	nar        bool   // the NAR exists
	narSize    int64
	narSHA     nixstore.Hash
	reuse      bool // the NAR exists with a known checksum
	listing    bool // HASH.ls exists (or is not wanted)
	narInfoLen int64
}

// push reports whether the path must be pushed.
func (st pathState) push() bool { return !st.narInfo || !st.nar || !st.listing }

func (st pathState) objects(p *pusher, pi *nixstore.PathInfo) []plan.Object {
	dest := p.b.String()
	digest := pi.NarHash.String()
	src := pi.Path.String()
	ni := plan.Object{Dest: dest, Key: NarInfoKey(pi.Path), Kind: plan.KindNarInfo, Size: -1, Digest: digest, Source: src, Why: plan.Present}
	nar := plan.Object{Dest: dest, Key: st.narKey, Kind: plan.KindNAR, Size: -1, Digest: digest, Source: src, Why: plan.Present}
	ls := plan.Object{Dest: dest, Key: ListingKey(pi.Path), Kind: plan.KindListing, Size: -1, Digest: digest, Source: src, Why: plan.Present}
	if st.nar {
		nar.Size = st.narSize
	}
	if st.narInfo {
		ni.Size = st.narInfoLen
	}
	if st.push() {
		ni.Why = plan.New
		if st.narInfo {
			ni.Why, ni.Detail = plan.Changed, "its NAR or listing is missing"
		}
		if !st.reuse {
			nar.Why = plan.New
			ls.Why = plan.New
		}
	}
	out := []plan.Object{nar}
	if p.uri.WriteNARListing {
		out = append(out, ls)
	}
	return append(out, ni)
}

// statPath asks the cache what it holds of pi.
func (p *pusher) statPath(ctx context.Context, pi *nixstore.PathInfo) (pathState, error) {
	st := pathState{narKey: p.uri.NARKey(pi.NarHash), listing: true}
	info, err := p.b.Stat(ctx, NarInfoKey(pi.Path))
	switch {
	case err == nil:
		st.narInfo, st.narInfoLen = true, info.Size
	case errors.Is(err, bucket.ErrNotFound), errors.Is(err, bucket.ErrForbidden):
	default:
		return st, err
	}
	if p.uri.WriteNARListing {
		if st.listing, err = bucket.Exists(ctx, p.b, ListingKey(pi.Path), true); err != nil {
			return st, err
		}
	}
	ninfo, err := p.b.Stat(ctx, st.narKey)
	switch {
	case err == nil && ninfo.Size > 0:
		st.nar, st.narSize = true, ninfo.Size
	case err == nil, errors.Is(err, bucket.ErrNotFound), errors.Is(err, bucket.ErrForbidden):
		if st.narInfo {
			// Written by another tool (Nix names NARs by FileHash): find
			// the NAR the narinfo names.
			if url, ok := p.narInfoURL(ctx, pi.Path); ok {
				if ninfo, err := p.b.Stat(ctx, url); err == nil && ninfo.Size > 0 {
					st.narKey, st.nar, st.narSize = url, true, ninfo.Size
				}
			}
		}
		return st, nil
	default:
		return st, err
	}
	// A NAR without its narinfo was left by an interrupted push: reused
	// when its checksum is known (releng completes a NAR upload only after
	// the hash check).
	if !st.narInfo && st.listing {
		sum, err := p.checksum(ctx, st.narKey)
		if err == nil && sum != "" {
			if h, err := parseHexHash(sum); err == nil {
				st.reuse, st.narSHA = true, h
			}
		}
	}
	if !st.reuse && st.push() {
		st.nar = false // sent again
	}
	return st, nil
}

// narInfoURL reads the narinfo of path and returns the URL it names.
func (p *pusher) narInfoURL(ctx context.Context, path nixstore.StorePath) (string, bool) {
	data, err := FetchBody(ctx, p.b, NarInfoKey(path), fsutil.MaxNarinfo)
	if err != nil {
		return "", false
	}
	ni, err := nixstore.ParseNarInfo(data, NarInfoKey(path), path.Dir)
	if err != nil || ni.URL == "" {
		return "", false
	}
	return ni.URL, true
}

// planCacheInfo checks nix-cache-info: present (for the same store
// directory) or to write.
func (p *pusher) planCacheInfo(ctx context.Context, storeDir string) (plan.Object, error) {
	o := plan.Object{Dest: p.b.String(), Key: CacheInfoKey, Kind: plan.KindCacheInfo, Why: plan.Present}
	data, err := readSmall(ctx, p.b, CacheInfoKey, fsutil.MaxNarinfo)
	switch {
	case err == nil:
		o.Size = int64(len(data))
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "StoreDir" {
				if v = strings.TrimSpace(v); v != storeDir {
					return o, fmt.Errorf("%s says the cache is for the store %s, not %s; push to another cache", bucket.ObjectURL(p.b, CacheInfoKey), v, storeDir)
				}
			}
		}
		return o, nil
	case errors.Is(err, bucket.ErrNotFound), errors.Is(err, bucket.ErrForbidden):
		o.Why = plan.New
		o.Size = int64(len(p.cacheInfoBody(storeDir)))
		return o, nil
	}
	return o, p.storeErr(err)
}

func (p *pusher) cacheInfoBody(storeDir string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "StoreDir: %s\n", storeDir)
	if p.uri.WantMassQuery {
		b.WriteString("WantMassQuery: 1\n")
	}
	if p.uri.HasPriority {
		fmt.Fprintf(&b, "Priority: %d\n", p.uri.Priority)
	}
	return []byte(b.String())
}

// readSmall reads a small object whole (no Content-Encoding undone).
func readSmall(ctx context.Context, b bucket.Bucket, key string, limit int64) ([]byte, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return fsutil.ReadAllLimited(io.Reader(rc), bucket.ObjectURL(b, key), limit)
}

// checksum is the SHA-256 (hex) of an object, "" when the cache does not
// know it and cannot read it back cheaply.
func (p *pusher) checksum(ctx context.Context, key string) (string, error) {
	return bucket.Checksum(ctx, p.b, key)
}

func parseHexHash(s string) (nixstore.Hash, error) {
	var h nixstore.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("not a hex SHA-256: %q", s)
	}
	copy(h[:], b)
	return h, nil
}
