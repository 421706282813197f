package binarycache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/runctx"
)

// CopyOptions say what Copy copies from one cache to another (`releng
// promote`): the closure of Roots as the source cache holds it, its NARs
// byte for byte, its narinfos re-signed with the destination's keys.
type CopyOptions struct {
	// From is the source cache; FromKeys are the keys its narinfos must be
	// signed by (one of them), or the copy is refused.
	From       *StoreURI
	FromBucket bucket.Bucket
	FromKeys   []nixstore.PublicKey
	// URI and Bucket are the destination. Trusted are its public keys: a
	// narinfo there signed by one of them for the same NAR is present.
	URI     *StoreURI
	Bucket  bucket.Bucket
	Trusted []nixstore.PublicKey
	// Roots are the store paths whose closures are copied.
	Roots []nixstore.StorePath
	// Keys sign the narinfos written (Copy); at least one.
	Keys []*nixstore.SecretKey
	// Jobs is the number of NARs copied at once (default 4); Checks the
	// requests in flight while planning (default 32).
	Jobs, Checks int
	// OnEvent, if set, is told what happens, one call at a time
	// (EventNARDone and EventPublished).
	OnEvent func(Event)
}

// CopyPlan is what a copy sends: per path of the closure its NAR,
// listing and narinfo, each new, present or changed.
type CopyPlan struct {
	*plan.Plan
	paths     []*copyPath
	cacheInfo []byte
	// Conflicts name the paths whose narinfo at the destination describes
	// other contents than the source's (a different NarHash).
	Conflicts []string
}

// copyPath is one store path of a copy: the source's narinfo and what the
// destination lacks.
type copyPath struct {
	ni                   *nixstore.NarInfo
	sendNAR, sendListing bool
	sendNarInfo          bool
	level                int // 0: no reference in the closure; else 1 + its references' highest
	published            bool
}

// Paths are the store paths of the closure, sorted (for Verify).
func (pl *CopyPlan) Paths() []nixstore.StorePath {
	out := make([]nixstore.StorePath, len(pl.paths))
	for i, cp := range pl.paths {
		out[i] = cp.ni.StorePath
	}
	return out
}

// SourceError is a source cache that does not hold what a copy needs, or
// holds it unsigned or broken: nothing was copied.
type SourceError struct {
	URL, Msg string
}

func (e *SourceError) Error() string { return e.URL + ": " + e.Msg }

// PlanCopy reads the closure of opts.Roots from the source cache — every
// narinfo once, each checked against opts.FromKeys, its NAR's presence
// and size checked — and asks the destination what it has of each path.
// Nothing is written.
func PlanCopy(ctx context.Context, opts CopyOptions) (*CopyPlan, error) {
	if opts.URI.ReadOnly() {
		return nil, &URIError{URI: opts.URI.Raw, Msg: "an http(s):// cache is read-only: promote to the S3 bucket behind it with s3://BUCKET?endpoint=HOST, or to file:///dir"}
	}
	checks := opts.Checks
	if checks <= 0 {
		checks = 32
	}
	infos, err := ReadClosure(ctx, opts.FromBucket, opts.FromKeys, opts.Roots, checks)
	if err != nil {
		return nil, err
	}
	p := &pusher{PushOptions: PushOptions{URI: opts.URI, Bucket: opts.Bucket}, uri: opts.URI, b: opts.Bucket}
	p.defaults()
	pl := &CopyPlan{Plan: &plan.Plan{Stage: "cache", Dest: opts.Bucket.String()}}
	storeDir := nixstore.DefaultStoreDir
	if len(opts.Roots) > 0 {
		storeDir = opts.Roots[0].Dir
	}
	ci, err := p.planCacheInfo(ctx, storeDir)
	if err != nil {
		return nil, err
	}
	pl.Add(ci)
	if ci.Why == plan.New {
		pl.cacheInfo = p.cacheInfoBody(storeDir)
	}
	pl.paths = make([]*copyPath, len(infos))
	objs := make([][]plan.Object, len(infos))
	conflicts := make([]string, len(infos))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(checks)
	for i, ni := range infos {
		pl.paths[i] = &copyPath{ni: ni}
		g.Go(func() error {
			var err error
			objs[i], conflicts[i], err = planCopyPath(gctx, opts, pl.paths[i])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range infos {
		for _, o := range objs[i] {
			pl.Add(o)
		}
		if conflicts[i] != "" {
			pl.Conflicts = append(pl.Conflicts, conflicts[i])
		}
	}
	levels(pl.paths)
	return pl, nil
}

// ReadClosure reads the narinfos of the closure of roots from b, level by
// level, each once; every one must be there, signed by one of keys, and
// name a NAR of its FileSize.
func ReadClosure(ctx context.Context, b bucket.Bucket, keys []nixstore.PublicKey, roots []nixstore.StorePath, checks int) ([]*nixstore.NarInfo, error) {
	seen := map[string]bool{}
	var all []*nixstore.NarInfo
	next := slices.Clone(roots)
	for len(next) > 0 {
		var level []nixstore.StorePath
		for _, sp := range next {
			if !seen[sp.String()] {
				seen[sp.String()] = true
				level = append(level, sp)
			}
		}
		got := make([]*nixstore.NarInfo, len(level))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(checks)
		for i, sp := range level {
			g.Go(func() error {
				ni, err := readSourceNarInfo(gctx, b, keys, sp)
				got[i] = ni
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		next = nil
		for _, ni := range got {
			all = append(all, ni)
			next = append(next, ni.References...)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].StorePath.String() < all[j].StorePath.String() })
	return all, nil
}

// readSourceNarInfo reads and checks the source's narinfo of sp.
func readSourceNarInfo(ctx context.Context, b bucket.Bucket, keys []nixstore.PublicKey, sp nixstore.StorePath) (*nixstore.NarInfo, error) {
	key := NarInfoKey(sp)
	url := bucket.ObjectURL(b, key)
	data, err := FetchBody(ctx, b, key, fsutil.MaxNarinfo)
	if errors.Is(err, bucket.ErrNotFound) || errors.Is(err, bucket.ErrForbidden) {
		return nil, &SourceError{URL: url, Msg: fmt.Sprintf("no narinfo for %s: the cache does not hold this release", sp)}
	}
	if err != nil {
		return nil, err
	}
	ni, err := nixstore.ParseNarInfo(data, url, sp.Dir)
	if err != nil {
		return nil, &SourceError{URL: url, Msg: err.Error()}
	}
	if ni.StorePath != sp {
		return nil, &SourceError{URL: url, Msg: "describes " + ni.StorePath.String()}
	}
	if len(nixstore.VerifySignatures(ni.Fingerprint(), ni.Sigs, keys)) == 0 {
		return nil, &SourceError{URL: url, Msg: fmt.Sprintf("no valid signature by %s", keyNames(keys))}
	}
	if ni.URL == "" || ni.FileSize == 0 {
		return nil, &SourceError{URL: url, Msg: "names no NAR file (URL and FileSize are needed to copy it byte for byte)"}
	}
	info, err := b.Stat(ctx, ni.URL)
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return nil, &SourceError{URL: bucket.ObjectURL(b, ni.URL), Msg: fmt.Sprintf("the NAR of %s is missing", sp)}
	case err != nil:
		return nil, err
	case uint64(info.Size) != ni.FileSize:
		return nil, &SourceError{URL: bucket.ObjectURL(b, ni.URL), Msg: fmt.Sprintf("has %d bytes, its narinfo says %d", info.Size, ni.FileSize)}
	}
	return ni, nil
}

// planCopyPath asks the destination about one path: its narinfo (present
// when it describes the same NAR and is signed by a trusted key), the NAR
// under the source's URL, and the listing.
func planCopyPath(ctx context.Context, opts CopyOptions, cp *copyPath) ([]plan.Object, string, error) {
	b, ni := opts.Bucket, cp.ni
	dest, digest, src := b.String(), ni.NarHash.String(), bucket.ObjectURL(opts.FromBucket, NarInfoKey(ni.StorePath))
	niObj := plan.Object{Dest: dest, Key: NarInfoKey(ni.StorePath), Kind: plan.KindNarInfo, Size: -1, Digest: digest, Source: src, Why: plan.Present}
	narObj := plan.Object{Dest: dest, Key: ni.URL, Kind: plan.KindNAR, Size: int64(ni.FileSize), Digest: digest, Source: bucket.ObjectURL(opts.FromBucket, ni.URL), Why: plan.Present}
	lsObj := plan.Object{Dest: dest, Key: ListingKey(ni.StorePath), Kind: plan.KindListing, Size: -1, Digest: digest, Source: src, Why: plan.Present}
	conflict := ""
	data, err := FetchBody(ctx, b, NarInfoKey(ni.StorePath), fsutil.MaxNarinfo)
	switch {
	case errors.Is(err, bucket.ErrNotFound), errors.Is(err, bucket.ErrForbidden):
		niObj.Why, cp.sendNarInfo = plan.New, true
	case err != nil:
		return nil, "", err
	default:
		niObj.Size = int64(len(data))
		have, err := nixstore.ParseNarInfo(data, bucket.ObjectURL(b, niObj.Key), ni.StorePath.Dir)
		switch {
		case err != nil:
			niObj.Why, niObj.Detail, cp.sendNarInfo = plan.Changed, "unreadable: "+err.Error(), true
		case have.NarHash != ni.NarHash:
			niObj.Why, cp.sendNarInfo = plan.Changed, true
			niObj.Detail = fmt.Sprintf("the destination describes other contents (NarHash %s, the source has %s)", have.NarHash, ni.NarHash)
			conflict = fmt.Sprintf("%s (%s)", bucket.ObjectURL(b, niObj.Key), niObj.Detail)
		case len(nixstore.VerifySignatures(have.Fingerprint(), have.Sigs, opts.Trusted)) == 0:
			niObj.Why, niObj.Detail, cp.sendNarInfo = plan.Changed, "not signed by the destination's key: re-signed", true
		case have.URL != ni.URL:
			niObj.Why, niObj.Detail, cp.sendNarInfo = plan.Changed, "names another NAR file ("+have.URL+")", true
		}
	}
	info, err := b.Stat(ctx, ni.URL)
	switch {
	case err == nil && uint64(info.Size) == ni.FileSize:
	case err == nil:
		narObj.Why, narObj.Detail, cp.sendNAR = plan.Changed, fmt.Sprintf("the destination has %d bytes", info.Size), true
	case errors.Is(err, bucket.ErrNotFound), errors.Is(err, bucket.ErrForbidden):
		narObj.Why, cp.sendNAR = plan.New, true
	default:
		return nil, "", err
	}
	out := []plan.Object{narObj}
	if opts.URI.WriteNARListing {
		ok, err := bucket.Exists(ctx, b, lsObj.Key, true)
		if err != nil {
			return nil, "", err
		}
		if !ok || cp.sendNAR {
			lsObj.Why, cp.sendListing = plan.New, true
		}
		out = append(out, lsObj)
	}
	if (cp.sendNAR || cp.sendListing) && !cp.sendNarInfo {
		// A narinfo is written last, after what it names.
		niObj.Why, niObj.Detail, cp.sendNarInfo = plan.Changed, "its NAR or listing is missing", true
	}
	return append(out, niObj), conflict, nil
}

// levels numbers the paths so that each comes after its references.
func levels(paths []*copyPath) {
	byPath := map[string]*copyPath{}
	for _, cp := range paths {
		byPath[cp.ni.StorePath.String()] = cp
	}
	done := map[*copyPath]bool{}
	var visit func(cp *copyPath) int
	visit = func(cp *copyPath) int {
		if done[cp] {
			return cp.level
		}
		done[cp] = true // a cycle (never in a store) cannot loop
		lvl := 0
		for _, r := range cp.ni.References {
			if dep := byPath[r.String()]; dep != nil && dep != cp {
				lvl = max(lvl, visit(dep)+1)
			}
		}
		cp.level = lvl
		return lvl
	}
	for _, cp := range paths {
		visit(cp)
	}
}

// Copy executes a copy plan: nix-cache-info if missing, every NAR the
// destination lacks streamed byte for byte from the source (its SHA-256
// checked against the narinfo's FileHash while it is stored: a mismatch
// stores nothing), the listings, then the narinfos — each after those of
// its references — with the source's signatures replaced by opts.Keys'.
// Asked to stop, it finishes the NARs in flight and writes no narinfo
// whose references are not written: the destination stays consistent.
func Copy(ctx context.Context, opts CopyOptions, pl *CopyPlan) (*Summary, error) {
	if len(opts.Keys) == 0 {
		return nil, fmt.Errorf("no key to sign the narinfos copied to %s: set signing_key (or secret-key= in the cache URI)", opts.URI.Raw)
	}
	p := &pusher{PushOptions: PushOptions{URI: opts.URI, Bucket: opts.Bucket, OnEvent: opts.OnEvent, Jobs: opts.Jobs, Checks: opts.Checks}, uri: opts.URI, b: opts.Bucket}
	p.defaults()
	sum := &Summary{To: p.b.String(), Paths: len(pl.paths), PushedPaths: []string{}}
	if pl.cacheInfo != nil {
		if err := p.putSmall(ctx, CacheInfoKey, pl.cacheInfo, contentTypeCacheInfo, ""); err != nil {
			return nil, err
		}
	}
	err := p.copyNARs(ctx, opts, pl.paths)
	if err == nil {
		err = p.copyNarInfos(ctx, opts.Keys, pl.paths)
	}
	for _, cp := range pl.paths {
		switch {
		case cp.published:
			sum.Pushed++
			sum.PushedPaths = append(sum.PushedPaths, cp.ni.StorePath.String())
		case !cp.sendNarInfo:
			sum.Skipped++
		}
	}
	sum.NarBytes, sum.FileBytes = p.narBytes.Load(), p.fileBytes.Load()
	sum.BytesOut, sum.Objects = p.bytesOut.Load(), int(p.objects.Load())
	return sum, err
}

// copyNARs copies the NARs and listings the destination lacks, Jobs at a
// time, biggest first.
func (p *pusher) copyNARs(ctx context.Context, opts CopyOptions, paths []*copyPath) error {
	var todo []*copyPath
	for _, cp := range paths {
		if cp.sendNAR || cp.sendListing {
			todo = append(todo, cp)
		}
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].ni.FileSize > todo[j].ni.FileSize })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.Jobs)
	stopped := false
	for _, cp := range todo {
		if stopped = runctx.Stopping(ctx); stopped {
			break
		}
		g.Go(func() error { return p.copyNAR(gctx, opts, cp) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if stopped {
		return runctx.ErrInterrupted
	}
	return nil
}

// copyNAR copies one path's NAR and listing.
func (p *pusher) copyNAR(ctx context.Context, opts CopyOptions, cp *copyPath) error {
	ni := cp.ni
	if cp.sendNAR {
		body := bucket.Reopen(func() (io.ReadCloser, error) { return opts.FromBucket.Get(ctx, ni.URL) })
		info, err := p.b.Put(ctx, ni.URL, body, int64(ni.FileSize), bucket.PutOptions{ContentType: contentTypeNAR, SHA256: hex.EncodeToString(ni.FileHash[:])})
		body.Close()
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", bucket.ObjectURL(opts.FromBucket, ni.URL), bucket.ObjectURL(p.b, ni.URL), p.storeErr(err))
		}
		p.narBytes.Add(int64(ni.NarSize))
		p.fileBytes.Add(info.Size)
		p.bytesOut.Add(info.Size)
		p.objects.Add(1)
	}
	if cp.sendListing {
		data, err := FetchBody(ctx, opts.FromBucket, ListingKey(ni.StorePath), fsutil.MaxListing)
		if errors.Is(err, bucket.ErrNotFound) || errors.Is(err, bucket.ErrForbidden) {
			// The source wrote no listing: made from the NAR just copied.
			data, err = checkNar(ctx, p.b, ni, true)
		}
		if err != nil {
			return fmt.Errorf("listing of %s: %w", ni.StorePath, err)
		}
		if err := p.putEncoded(ctx, ListingKey(ni.StorePath), data, contentTypeListing, p.uri.LSCompression); err != nil {
			return err
		}
	}
	p.event(Event{Kind: EventNARDone, Path: ni.StorePath, Bytes: int64(ni.NarSize), FileSize: int64(ni.FileSize)})
	return nil
}

// copyNarInfos writes the narinfos level by level: a path's references
// are in the destination before it is.
func (p *pusher) copyNarInfos(ctx context.Context, keys []*nixstore.SecretKey, paths []*copyPath) error {
	byLevel := map[int][]*copyPath{}
	top := 0
	for _, cp := range paths {
		if cp.sendNarInfo {
			byLevel[cp.level] = append(byLevel[cp.level], cp)
			top = max(top, cp.level)
		}
	}
	var mu sync.Mutex
	for lvl := 0; lvl <= top; lvl++ {
		if runctx.Stopping(ctx) {
			return runctx.ErrInterrupted
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(p.Checks)
		for _, cp := range byLevel[lvl] {
			g.Go(func() error {
				ni := *cp.ni
				ni.Sigs = nil
				for _, k := range keys {
					ni.Sign(k)
				}
				data, err := ni.Marshal()
				if err != nil {
					return err
				}
				if err := p.putEncoded(gctx, NarInfoKey(ni.StorePath), data, contentTypeNarInfo, p.uri.NarinfoCompression); err != nil {
					return err
				}
				mu.Lock()
				cp.published = true
				mu.Unlock()
				p.event(Event{Kind: EventPublished, Path: ni.StorePath, Bytes: int64(ni.NarSize), FileSize: int64(ni.FileSize)})
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}
