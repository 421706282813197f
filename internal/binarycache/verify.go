package binarycache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
)

// VerifyOptions say what Verify reads back.
type VerifyOptions struct {
	URI    *StoreURI
	Bucket bucket.Bucket
	// Keys are the public keys a narinfo must be signed by (one of them).
	Keys []nixstore.PublicKey
	// Paths are the store paths to check (a push plan's Paths).
	Paths []nixstore.StorePath
	// Jobs bounds the paths read back at once (default 4).
	Jobs int
}

// PathCheck is the result of reading back one store path.
type PathCheck struct {
	Path string
	// Problems name each object at fault; none when the path is intact.
	Problems []string
}

// Verify reads back every path of opts.Paths, as a reader of the cache
// would: the narinfo (describing that path, signed by one of opts.Keys),
// the NAR file it names (FileSize and FileHash) and the NAR inside it
// (NarSize and NarHash), and, when the cache writes listings, HASH.ls,
// which must be the listing of that NAR byte for byte. Results are sorted
// by path.
func Verify(ctx context.Context, opts VerifyOptions) []PathCheck {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	out := make([]PathCheck, len(opts.Paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, sp := range opts.Paths {
		g.Go(func() error {
			out[i] = PathCheck{Path: sp.String(), Problems: verifyPath(gctx, opts, sp)}
			return nil
		})
	}
	g.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func verifyPath(ctx context.Context, opts VerifyOptions, sp nixstore.StorePath) []string {
	b := opts.Bucket
	niKey := NarInfoKey(sp)
	niURL := bucket.ObjectURL(b, niKey)
	data, err := FetchBody(ctx, b, niKey, fsutil.MaxNarinfo)
	if err != nil {
		return []string{err.Error()}
	}
	ni, err := nixstore.ParseNarInfo(data, niURL, sp.Dir)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	if ni.StorePath != sp {
		problems = append(problems, fmt.Sprintf("%s: describes %s", niURL, ni.StorePath))
	}
	if signers := nixstore.VerifySignatures(ni.Fingerprint(), ni.Sigs, opts.Keys); len(signers) == 0 {
		problems = append(problems, fmt.Sprintf("%s: no valid signature by %s (signatures: %s)", niURL, keyNames(opts.Keys), strings.Join(sigNames(ni.Sigs), ", ")))
	}
	listings := opts.URI != nil && opts.URI.WriteNARListing
	listing, err := checkNar(ctx, b, ni, listings)
	if err != nil {
		problems = append(problems, err.Error())
	} else if listings {
		if err := checkListing(ctx, b, ListingKey(sp), listing); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// FetchBody reads a small object of the cache (narinfo, listing) with one
// GET, undoing the Content-Encoding it was stored with — recognised by its
// magic number (zstd, xz), as no narinfo or listing begins with one — and
// refuses one that decodes to more than limit bytes.
func FetchBody(ctx context.Context, b bucket.Bucket, key string, limit int64) ([]byte, error) {
	url := bucket.ObjectURL(b, key)
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	head, _ := br.Peek(6)
	method := ""
	switch {
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		method = CompressionZstd
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		method = CompressionXZ
	}
	r, done, err := decompress(method, br)
	if err != nil {
		return nil, fmt.Errorf("%s: Content-Encoding: %w", url, err)
	}
	defer done()
	return fsutil.ReadAllLimited(r, url, limit)
}

// decompress undoes a NAR's Compression or a body's Content-Encoding.
func decompress(method string, r io.Reader) (io.Reader, func(), error) {
	switch method {
	case "", CompressionNone, "identity":
		return r, func() {}, nil
	case CompressionZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return d, d.Close, nil
	case CompressionXZ:
		x, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return x, func() {}, nil
	}
	return nil, nil, fmt.Errorf("unsupported compression %q", method)
}

// hashCounter hashes and counts what is written to it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: sha256.New()} }

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *hashCounter) sum() nixstore.Hash {
	var s nixstore.Hash
	copy(s[:], c.h.Sum(nil))
	return s
}

// checkNar reads the NAR file ni names and checks its size and hash and
// those of the NAR it decompresses to against ni; with listing, it also
// returns the `.ls` listing of that NAR, encoded by the code the push
// uses.
func checkNar(ctx context.Context, b bucket.Bucket, ni *nixstore.NarInfo, listing bool) ([]byte, error) {
	url := bucket.ObjectURL(b, ni.URL)
	rc, err := b.Get(ctx, ni.URL)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	file := newHashCounter()
	var stored io.Reader = rc
	if ni.FileSize > 0 {
		stored = io.LimitReader(rc, int64(ni.FileSize)+1)
	}
	stored = io.TeeReader(stored, file)
	r, done, err := decompress(ni.Compression, stored)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	defer done()
	contents := newHashCounter()
	body := io.TeeReader(io.LimitReader(r, int64(ni.NarSize)+1), contents)
	var l *nar.Listing
	var listErr error
	if listing {
		l, listErr = nar.ReadListing(body)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if _, err := io.Copy(io.Discard, stored); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if got := contents.sum(); uint64(contents.n) != ni.NarSize || got != ni.NarHash {
		return nil, fmt.Errorf("%s: NAR has %d bytes and hash %s, the narinfo says %d and %s", url, contents.n, got, ni.NarSize, ni.NarHash)
	}
	if got := file.sum(); ni.FileSize > 0 && (uint64(file.n) != ni.FileSize || got != ni.FileHash) {
		return nil, fmt.Errorf("%s: file has %d bytes and hash %s, the narinfo says %d and %s", url, file.n, got, ni.FileSize, ni.FileHash)
	}
	if !listing {
		return nil, nil
	}
	if listErr != nil {
		return nil, fmt.Errorf("%s: %w", url, listErr)
	}
	data, err := l.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return data, nil
}

// checkListing compares the listing at key with want, byte for byte.
func checkListing(ctx context.Context, b bucket.Bucket, key string, want []byte) error {
	got, err := FetchBody(ctx, b, key, fsutil.MaxListing)
	if err != nil {
		return err
	}
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("%s differs from the listing of its NAR at byte %d (%d bytes, %d expected): %q instead of %q",
		bucket.ObjectURL(b, key), i, len(got), len(want), excerpt(got, i), excerpt(want, i))
}

// excerpt is up to 32 bytes of data from i.
func excerpt(data []byte, i int) []byte {
	return data[i:min(len(data), i+32)]
}

func keyNames(keys []nixstore.PublicKey) string {
	var n []string
	for _, k := range keys {
		n = append(n, k.Name)
	}
	if len(n) == 0 {
		return "(no public keys)"
	}
	return strings.Join(n, ", ")
}

func sigNames(sigs []string) []string {
	var n []string
	for _, s := range sigs {
		name, _, _ := strings.Cut(s, ":")
		n = append(n, name)
	}
	if len(n) == 0 {
		return []string{"none"}
	}
	return n
}
