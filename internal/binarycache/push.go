package binarycache

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/runctx"
)

// Content types of the objects of a binary cache, as Nix writes them.
const (
	contentTypeNarInfo   = "text/x-nix-narinfo"
	contentTypeCacheInfo = "text/x-nix-cache-info"
	contentTypeNAR       = "application/x-nix-nar"
	contentTypeListing   = "application/json"
)

// CacheInfoKey is the key of the cache's nix-cache-info file.
const CacheInfoKey = "nix-cache-info"

// PushOptions configure a Push.
type PushOptions struct {
	// URI says how to write the cache: compression, listings,
	// nix-cache-info fields, Content-Encoding of narinfos and listings.
	URI *StoreURI
	// Bucket holds the cache (URI.Open, possibly decorated).
	Bucket bucket.Bucket
	// Paths is what to push: a closure (every reference of every path is
	// among Paths, see Closure). Their store directory is the cache's
	// StoreDir.
	Paths []nixstore.PathInfo
	// Keys sign every narinfo written; none leaves narinfos unsigned
	// (with the signatures the paths already have).
	Keys []*nixstore.SecretKey
	// Jobs is the number of NARs serialised and uploaded at once
	// (default 4).
	Jobs int
	// Checks is the number of existence checks in flight (default 32).
	Checks int
	// Workers is the number of zstd compression workers shared by all
	// NARs (default GOMAXPROCS).
	Workers int
	// OnEvent, if set, is told what happens, one call at a time.
	OnEvent func(Event)
	// Plan is what to push, from PlanPush with the same options; nil
	// plans first.
	Plan *Plan
}

// EventKind says what an Event reports.
type EventKind int

// The events of a push, roughly in the order they come.
const (
	// EventStart: Total paths to consider.
	EventStart EventKind = iota + 1
	// EventChecked: Path's narinfo was looked up; Missing says whether
	// it must be pushed.
	EventChecked
	// EventPlan: the checks are done; Total paths are missing, with
	// Bytes bytes of NAR in all.
	EventPlan
	// EventNARStart: Path's NAR is being serialised and uploaded.
	EventNARStart
	// EventNARBytes: Bytes more bytes of NAR were serialised.
	EventNARBytes
	// EventNARDone: Path's NAR (Bytes of NAR, FileSize compressed) is in
	// the cache; Reused when an earlier, interrupted push had sent it.
	EventNARDone
	// EventPublished: Path's narinfo was written: it is in the cache.
	EventPublished
)

// Event is a progress report of a push.
type Event struct {
	Kind     EventKind
	Path     nixstore.StorePath
	Missing  bool
	Reused   bool
	Bytes    int64
	FileSize int64
	Total    int
}

// Summary is the result of a push (`releng cache push --json`).
type Summary struct {
	// To is the cache, as its bucket names it.
	To string `json:"to"`
	// Paths is the number of paths considered (the closure).
	Paths int `json:"paths"`
	// Pushed paths had their narinfo written; Skipped were already in the
	// cache.
	Pushed  int `json:"pushed"`
	Skipped int `json:"skipped"`
	// NarBytes is the size of the NARs pushed (uncompressed, bytes in);
	// FileBytes the size of the NAR files written.
	NarBytes  int64 `json:"nar_bytes"`
	FileBytes int64 `json:"file_bytes"`
	// BytesOut is everything written: NARs, listings, narinfos and
	// nix-cache-info.
	BytesOut int64 `json:"bytes_out"`
	// Objects is the number of objects written.
	Objects int `json:"objects"`
	// Compression is the NAR compression.
	Compression string `json:"compression"`
	// Seconds is the wall time of the push.
	Seconds float64 `json:"seconds"`
	// PushedPaths are the store paths pushed, sorted.
	PushedPaths []string `json:"pushed_paths"`
	// LeftoversRemoved are the unfinished writes of interrupted pushes
	// removed once this one completed (S3 multipart uploads of the plan's
	// NARs, temporary files of a file:// cache): "URL (what)".
	LeftoversRemoved []string `json:"leftovers_removed,omitempty"`
	// LeftoversError says why they could not be looked for or removed
	// (what was pushed stands).
	LeftoversError string `json:"leftovers_error,omitempty"`
}

// CorruptError reports a store path whose contents differ from what the
// Nix database records for it: it is never published.
type CorruptError struct {
	Path nixstore.StorePath
	// What differs: "hash" or "size", the database's value and the
	// contents'.
	What, Want, Got string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store path %s is corrupt: its contents have NAR %s %s, but the Nix database records %s; it was not published (repair it with `nix-store --repair-path %s`, or rebuild it)", e.Path, e.What, e.Got, e.Want, e.Path)
}

// pusher is the state of one Push.
type pusher struct {
	PushOptions
	uri  *StoreURI
	b    bucket.Bucket
	zstd *compressor

	evMu sync.Mutex

	pushed    atomic.Int64
	narBytes  atomic.Int64
	fileBytes atomic.Int64
	bytesOut  atomic.Int64
	objects   atomic.Int64

	small chan struct{} // bounds small-object writes in flight
}

func (p *pusher) event(e Event) {
	if p.OnEvent == nil {
		return
	}
	p.evMu.Lock()
	defer p.evMu.Unlock()
	p.OnEvent(e)
}

// item is one path to push.
type item struct {
	pi        *nixstore.PathInfo
	published chan struct{} // closed once its narinfo is written
	gone      chan struct{} // closed once it will not be published (a stop)
	fileHash  nixstore.Hash
	fileSize  int64
	url       string // where the NAR goes (set by the plan)
	reused    bool   // the NAR is in the cache already (an interrupted push)
}

// Push publishes opts.Paths to the cache (SPEC §9.1) as opts.Plan (or a
// new PlanPush) says, and says what it did. On error, what was published is
// consistent: every narinfo in the cache names a NAR that is there and
// references whose narinfos are there.
func Push(ctx context.Context, opts PushOptions) (*Summary, error) {
	start := time.Now()
	pl := opts.Plan
	if pl == nil {
		var err error
		if pl, err = PlanPush(ctx, opts); err != nil {
			return nil, err
		}
	}
	p := &pusher{PushOptions: opts, uri: opts.URI, b: opts.Bucket}
	p.defaults()
	sum := &Summary{To: p.b.String(), Paths: len(pl.infos), Compression: p.uri.Compression, PushedPaths: []string{}}
	if pl.cacheInfo != nil {
		if err := p.putSmall(ctx, CacheInfoKey, pl.cacheInfo, contentTypeCacheInfo, ""); err != nil {
			return nil, err
		}
	}
	sum.Skipped = len(pl.infos) - len(pl.items)
	var err error
	if len(pl.items) > 0 {
		if p.uri.Compression == CompressionZstd {
			p.zstd, err = newCompressor(p.uri.CompressionLevel, p.Workers)
			if err != nil {
				return nil, err
			}
			defer p.zstd.close()
		}
		err = p.upload(ctx, pl.items)
	}
	if err == nil {
		sum.LeftoversRemoved, sum.LeftoversError = p.removeLeftovers(ctx, pl, start)
	}
	sum.Pushed = int(p.pushed.Load())
	sum.NarBytes = p.narBytes.Load()
	sum.FileBytes = p.fileBytes.Load()
	sum.BytesOut = p.bytesOut.Load()
	sum.Objects = int(p.objects.Load())
	sum.Seconds = time.Since(start).Seconds()
	for _, it := range pl.items {
		select {
		case <-it.published:
			sum.PushedPaths = append(sum.PushedPaths, it.pi.Path.String())
		default:
		}
	}
	slices.Sort(sum.PushedPaths)
	if err != nil {
		return sum, err
	}
	return sum, nil
}

func (p *pusher) defaults() {
	if p.Jobs <= 0 {
		p.Jobs = 4
	}
	if p.Checks <= 0 {
		p.Checks = 32
	}
	p.small = make(chan struct{}, p.Checks)
}

// validate checks the paths before anything is sent: complete path
// information, a closed, acyclic closure in one store directory, and every
// path present on disk.
func (p *pusher) validate() ([]*nixstore.PathInfo, error) {
	infos := make([]*nixstore.PathInfo, len(p.Paths))
	for i := range p.Paths {
		infos[i] = &p.Paths[i]
	}
	seen := map[string]bool{}
	for _, pi := range infos {
		if pi.Path.IsZero() {
			return nil, errors.New("path information without a store path")
		}
		if pi.Path.Dir != infos[0].Path.Dir {
			return nil, fmt.Errorf("%s and %s are in different store directories; a cache holds paths of one", infos[0].Path, pi.Path)
		}
		if seen[pi.Path.String()] {
			return nil, fmt.Errorf("%s is listed twice in the path information", pi.Path)
		}
		seen[pi.Path.String()] = true
		if pi.NarHash.IsZero() || pi.NarSize == 0 {
			return nil, fmt.Errorf("%s: the path information has no narHash or narSize; releng needs both to check what it publishes", pi.Path)
		}
	}
	if err := nixstore.CheckClosure(p.Paths); err != nil {
		return nil, fmt.Errorf("%v: push a whole closure (nix path-info --recursive)", err)
	}
	if err := checkAcyclic(infos); err != nil {
		return nil, err
	}
	for _, pi := range infos {
		if _, err := os.Lstat(pi.Path.String()); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("store path %s does not exist on disk; realise it first (nix-store --realise %s)", pi.Path, pi.Path)
			}
			return nil, fmt.Errorf("store path %s: %w", pi.Path, err)
		}
	}
	return infos, nil
}

// checkAcyclic refuses references that form a cycle (other than a path
// referring to itself): Nix cannot produce them, and they could never be
// published in order.
func checkAcyclic(infos []*nixstore.PathInfo) error {
	byPath := make(map[string]*nixstore.PathInfo, len(infos))
	for _, pi := range infos {
		byPath[pi.Path.String()] = pi
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(pi *nixstore.PathInfo, chain []string) error
	visit = func(pi *nixstore.PathInfo, chain []string) error {
		k := pi.Path.String()
		switch state[k] {
		case done:
			return nil
		case visiting:
			i := slices.Index(chain, k)
			return fmt.Errorf("the path information has a reference cycle: %s", strings.Join(append(chain[i:], k), " → "))
		}
		state[k] = visiting
		chain = append(chain, k)
		for _, r := range pi.References {
			if r == pi.Path {
				continue
			}
			if err := visit(byPath[r.String()], chain); err != nil {
				return err
			}
		}
		state[k] = done
		return nil
	}
	for _, pi := range infos {
		if err := visit(pi, nil); err != nil {
			return err
		}
	}
	return nil
}

// storeErr adds advice to errors of the store.
func (p *pusher) storeErr(err error) error {
	if errors.Is(err, bucket.ErrForbidden) {
		return fmt.Errorf("%w (check the S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or profile= in the store URI)", err)
	}
	return err
}

// putSmall writes a small object held in memory.
func (p *pusher) putSmall(ctx context.Context, key string, data []byte, contentType, encoding string) error {
	select {
	case p.small <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.small }()
	info, err := p.b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), bucket.PutOptions{ContentType: contentType, ContentEncoding: encoding})
	if err != nil {
		return p.storeErr(err)
	}
	p.bytesOut.Add(info.Size)
	p.objects.Add(1)
	return nil
}

// putEncoded writes a narinfo or listing, compressed with method (the
// URI's narinfo-compression or ls-compression) where the store keeps a
// Content-Encoding (S3).
func (p *pusher) putEncoded(ctx context.Context, key string, data []byte, contentType, method string) error {
	enc := p.uri.bodyEncoding(method)
	data, err := compressBody(enc, data)
	if err != nil {
		return err
	}
	return p.putSmall(ctx, key, data, contentType, enc)
}

// nixbase32 is the hash without its "sha256:" prefix.
func nixbase32(h nixstore.Hash) string {
	_, s, _ := strings.Cut(h.String(), ":")
	return s
}

// upload pushes the NARs of items, largest first, Jobs at a time, and
// writes each narinfo once its NAR and its references' narinfos are there.
// Asked to stop (runctx.WithStop), it starts no new NAR, lets the ones in
// flight finish, publishes those whose references are published, and
// returns runctx.ErrInterrupted: the cache stays consistent.
func (p *pusher) upload(ctx context.Context, items []*item) error {
	byPath := make(map[string]*item, len(items))
	for _, it := range items {
		byPath[it.pi.Path.String()] = it
		it.gone = make(chan struct{})
	}
	order := slices.Clone(items)
	slices.SortStableFunc(order, func(a, b *item) int {
		if a.pi.NarSize != b.pi.NarSize {
			if a.pi.NarSize > b.pi.NarSize {
				return -1
			}
			return 1
		}
		return strings.Compare(a.pi.Path.String(), b.pi.Path.String())
	})
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan *item)
	stop := runctx.StopChan(ctx)
	go func() {
		defer close(queue)
		for i, it := range order {
			select {
			case <-stop:
			default:
				select {
				case queue <- it:
					continue
				case <-gctx.Done():
					return
				case <-stop:
				}
			}
			for _, rest := range order[i:] { // never started
				close(rest.gone)
			}
			return
		}
	}()
	for range min(p.Jobs, len(order)) {
		g.Go(func() error {
			for it := range queue {
				if runctx.Stopping(ctx) {
					close(it.gone)
					continue
				}
				if err := p.pushNAR(gctx, it); err != nil {
					return err
				}
				g.Go(func() error { return p.publish(gctx, it, byPath) })
			}
			return nil
		})
	}
	err := g.Wait()
	for range queue { // let the feeder end
	}
	if err == nil && runctx.Stopping(ctx) {
		for _, it := range items {
			select {
			case <-it.published:
			default:
				return runctx.ErrInterrupted
			}
		}
	}
	return err
}

// publish writes the narinfo of it once its references' narinfos exist.
func (p *pusher) publish(ctx context.Context, it *item, byPath map[string]*item) error {
	for _, r := range it.pi.References {
		dep, ok := byPath[r.String()]
		if !ok || dep == it {
			continue // already in the cache, or itself
		}
		select {
		case <-dep.published:
		case <-dep.gone: // stopped before it: so is it
			close(it.gone)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ni := nixstore.NewNarInfo(it.pi)
	ni.URL = it.url
	ni.Compression = p.uri.Compression
	ni.FileHash = it.fileHash
	ni.FileSize = uint64(it.fileSize)
	for _, k := range p.Keys {
		ni.Sign(k)
	}
	data, err := ni.Marshal()
	if err != nil {
		return err
	}
	if err := p.putEncoded(ctx, NarInfoKey(it.pi.Path), data, contentTypeNarInfo, p.uri.NarinfoCompression); err != nil {
		return err
	}
	// Reported before the paths that refer to it may go on, so the events
	// come in the order the narinfos were written.
	p.pushed.Add(1)
	p.event(Event{Kind: EventPublished, Path: it.pi.Path, Bytes: int64(it.pi.NarSize), FileSize: it.fileSize})
	close(it.published)
	return nil
}

// pushNAR uploads the NAR (and listing) of it, unless an earlier,
// interrupted push left them in the cache.
func (p *pusher) pushNAR(ctx context.Context, it *item) error {
	pi := it.pi
	if it.reused {
		p.event(Event{Kind: EventNARDone, Path: pi.Path, Bytes: int64(pi.NarSize), FileSize: it.fileSize, Reused: true})
		return nil
	}
	p.event(Event{Kind: EventNARStart, Path: pi.Path, Bytes: int64(pi.NarSize)})
	var (
		mu       sync.Mutex
		attempts []*attempt
	)
	body := bucket.Reopen(func() (io.ReadCloser, error) {
		a := p.startAttempt(ctx, pi)
		mu.Lock()
		attempts = append(attempts, a)
		mu.Unlock()
		return a.pr, nil
	})
	// Bound the part size for the largest the compressed NAR can be.
	hint := narBound(pi.NarSize)
	info, err := p.b.Put(ctx, it.url, body, -1, bucket.PutOptions{ContentType: contentTypeNAR, SizeHint: hint})
	body.Close()
	mu.Lock()
	defer mu.Unlock()
	var last *attempt
	for _, a := range attempts {
		<-a.done
		last = a
	}
	if last != nil {
		var ce *CorruptError
		if errors.As(last.err, &ce) {
			return ce
		}
	}
	if err != nil {
		if last != nil && last.err != nil && !errors.Is(last.err, io.ErrClosedPipe) {
			return fmt.Errorf("serialising %s: %w", pi.Path, last.err)
		}
		return p.storeErr(err)
	}
	if last == nil || last.res == nil {
		// Put returned without reading the body to its end.
		p.b.Delete(context.WithoutCancel(ctx), it.url)
		return fmt.Errorf("uploading the NAR of %s to %s: the store did not read it to the end", pi.Path, bucket.ObjectURL(p.b, it.url))
	}
	sha, err := hex.DecodeString(info.SHA256)
	if err != nil || len(sha) != len(it.fileHash) {
		return fmt.Errorf("uploading the NAR of %s: %s did not report the SHA-256 of what it stored", pi.Path, p.b)
	}
	copy(it.fileHash[:], sha)
	it.fileSize = info.Size
	p.narBytes.Add(int64(pi.NarSize))
	p.fileBytes.Add(info.Size)
	p.bytesOut.Add(info.Size)
	p.objects.Add(1)
	if p.uri.WriteNARListing {
		data, err := last.res.Listing.Marshal()
		if err != nil {
			return fmt.Errorf("listing of %s: %w", pi.Path, err)
		}
		if err := p.putEncoded(ctx, ListingKey(pi.Path), data, contentTypeListing, p.uri.LSCompression); err != nil {
			return err
		}
	}
	p.event(Event{Kind: EventNARDone, Path: pi.Path, Bytes: int64(pi.NarSize), FileSize: it.fileSize})
	return nil
}

// attempt is one serialisation of a NAR into the pipe a Put reads.
type attempt struct {
	pr   *io.PipeReader
	done chan struct{}
	res  *nar.DumpResult
	err  error
}

// startAttempt serialises, hashes and compresses the NAR of pi into a
// pipe. The pipe ends (EOF) only after the NAR's hash and size were found
// equal to the database's, so a Put of a corrupt path never completes.
func (p *pusher) startAttempt(ctx context.Context, pi *nixstore.PathInfo) *attempt {
	pr, pw := io.Pipe()
	a := &attempt{pr: pr, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		fail := func(err error) {
			a.err = err
			pw.CloseWithError(err)
		}
		cw, err := p.newNARWriter(ctx, pw, int64(pi.NarSize))
		if err != nil {
			fail(err)
			return
		}
		sink, ok := cw.(nar.Sink)
		if !ok {
			sink = nar.NewBufferSink(cw)
		}
		lw := &narCounter{Sink: sink, p: p, pi: pi}
		res, err := nar.DumpPath(lw, pi.Path.String(), nar.DumpOptions{Hash: true, Listing: p.uri.WriteNARListing})
		if err == nil {
			lw.flush()
		}
		switch {
		case lw.corrupt != nil:
			err = lw.corrupt
		case err != nil:
		case res.Size != pi.NarSize:
			err = &CorruptError{Path: pi.Path, What: "size", Want: fmt.Sprint(pi.NarSize), Got: fmt.Sprint(res.Size)}
		case nixstore.Hash(res.SHA256) != pi.NarHash:
			err = &CorruptError{Path: pi.Path, What: "hash", Want: pi.NarHash.String(), Got: nixstore.Hash(res.SHA256).String()}
		}
		if err != nil {
			cw.Abort()
			fail(err)
			return
		}
		if err := cw.Close(); err != nil {
			fail(err)
			return
		}
		a.res = res
		pw.Close()
	}()
	return a
}

// narCounter passes the NAR on, reports it for progress, and stops it as
// soon as it grows beyond the size the database records.
type narCounter struct {
	nar.Sink
	p       *pusher
	pi      *nixstore.PathInfo
	n       int64
	pending int64
	corrupt error
	over    [8]byte // what a NAR longer than recorded is read into
}

// Buffer implements nar.Sink; once the NAR has its recorded size, one more
// byte is a corrupt path, so the frame writer is not asked for memory.
func (c *narCounter) Buffer() ([]byte, error) {
	if c.n >= int64(c.pi.NarSize) {
		return c.over[:], nil
	}
	b, err := c.Sink.Buffer()
	return b[:min(int64(len(b)), int64(c.pi.NarSize)-c.n)], err
}

// Commit implements nar.Sink.
func (c *narCounter) Commit(n int) error {
	if c.n+int64(n) > int64(c.pi.NarSize) {
		c.corrupt = &CorruptError{Path: c.pi.Path, What: "size", Want: fmt.Sprint(c.pi.NarSize), Got: fmt.Sprintf("more than %d", c.pi.NarSize)}
		return c.corrupt
	}
	c.n += int64(n)
	c.pending += int64(n)
	if c.pending >= 1<<20 {
		c.flush()
	}
	return c.Sink.Commit(n)
}

func (c *narCounter) flush() {
	if c.pending > 0 {
		c.p.event(Event{Kind: EventNARBytes, Path: c.pi.Path, Bytes: c.pending})
		c.pending = 0
	}
}
