package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/project"
)

// Check is one line of verify's table.
type Check struct {
	What   string `json:"what"`
	Object string `json:"object"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// VerifyReport is the result of `releng verify`.
type VerifyReport struct {
	Environment string  `json:"environment"`
	Version     string  `json:"version"`
	Checks      []Check `json:"checks"`
	Failed      int     `json:"failed"`
}

// VerifyOptions are the flags of `releng verify`.
type VerifyOptions struct {
	Environment string
}

// Verify reads back everything upload published to an environment and
// checks it against build.json (SPEC §10.6). It needs no secret key.
func Verify(ctx context.Context, p *project.Project, opts VerifyOptions) (*VerifyReport, error) {
	rec, err := artifacts.Load(p.ReleaseDir())
	if err != nil {
		return nil, err
	}
	t, err := OpenTarget(ctx, p, opts.Environment, TargetOptions{NeedCredentials: true})
	if err != nil {
		return nil, err
	}
	r := &VerifyReport{Environment: t.Env.Name, Version: rec.Version}
	add := func(c Check) {
		if !c.OK {
			r.Failed++
		}
		r.Checks = append(r.Checks, c)
	}
	official, stable, _, err := releaseKind(ctx, p, rec)
	if err != nil {
		return nil, err
	}

	if t.Releases != nil && rec.Target == "all" {
		for _, f := range rec.Files {
			if strings.HasPrefix(f.Path, rec.VersionDir+"/") {
				add(checkObject(ctx, "releases", t.Releases, strings.TrimPrefix(f.Path, "artifacts/"), f))
			}
			if f.Path == "artifacts/manifest.nix" && stable {
				add(checkObject(ctx, "releases", t.Releases, "manifest.nix", f))
			}
		}
	}
	if t.Docs != nil {
		for _, prefix := range DocsPrefixes(rec.Name, rec.Major, official, stable) {
			for _, f := range rec.Files {
				if rel, ok := strings.CutPrefix(f.Path, "manual/"); ok {
					add(checkObject(ctx, "docs", t.Docs, prefix+rel, f))
				}
			}
		}
	}
	if t.Cache != nil && rec.Target == "all" {
		keys, err := t.VerifyKeys(p)
		if err != nil {
			return nil, err
		}
		// Everything the cache stage pushed (SPEC §10.2 step 1), and the
		// manifest's paths, which the manifest stage requires in the cache.
		drvs, outputs := CacheRoots(p.Config, rec)
		roots := append(drvs, outputs...)
		for _, sys := range sortedKeys(rec.Manifest) {
			roots = append(roots, rec.Manifest[sys])
		}
		for _, c := range verifyCache(ctx, t.Cache, t.CacheURI.WriteNARListing, keys, roots) {
			add(c)
		}
	}
	if len(t.Env.Images) > 0 && rec.Target == "all" && (len(rec.Images) > 0 || len(archivesOf(rec)) > 0) {
		for _, c := range verifyImages(ctx, p, t.Env, rec, stable) {
			add(c)
		}
	}
	if t.Env.GitRemote != nil || t.Env.BuiltIn {
		add(verifyGitTag(ctx, p, t, rec))
	}
	return r, nil
}

func checkObject(ctx context.Context, what string, b bucket.Bucket, key string, f artifacts.File) Check {
	c := Check{What: what, Object: bucket.ObjectURL(b, key)}
	rc, err := b.Get(ctx, key)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	sum := hex.EncodeToString(h.Sum(nil))
	switch {
	case n != f.Size:
		c.Detail = fmt.Sprintf("size %d, build.json says %d", n, f.Size)
	case sum != f.SHA256:
		c.Detail = fmt.Sprintf("sha256 %s, build.json says %s", sum, f.SHA256)
	default:
		c.OK = true
	}
	return c
}

// cacheVerifyJobs bounds the store paths verify reads back at once.
const cacheVerifyJobs = 4

// verifyCache walks the closure of roots through the cache's narinfos (a
// .drv's narinfo references its inputs, so no local Nix is needed) and
// checks every path once: the narinfo's signature, the NAR file's size and
// hash and the NAR's (FileSize/FileHash, NarSize/NarHash), and, when the
// cache writes listings, that HASH.ls is the listing of that NAR. One row
// per store path; a failure names each object at fault.
func verifyCache(ctx context.Context, b bucket.Bucket, listings bool, keys []nixstore.PublicKey, roots []string) []Check {
	w := &cacheWalk{ctx: ctx, b: b, listings: listings, keys: keys, seen: map[string]bool{}, sem: make(chan struct{}, cacheVerifyJobs)}
	for _, r := range roots {
		w.visit(r)
	}
	w.wg.Wait()
	sort.Slice(w.checks, func(i, j int) bool { return w.checks[i].Object < w.checks[j].Object })
	return w.checks
}

type cacheWalk struct {
	ctx      context.Context
	b        bucket.Bucket
	listings bool
	keys     []nixstore.PublicKey
	sem      chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	seen   map[string]bool
	checks []Check
}

// visit checks path, then its references, unless it was seen already.
func (w *cacheWalk) visit(path string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[path] {
		return
	}
	w.seen[path] = true
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.sem <- struct{}{}
		c, refs := w.check(path)
		<-w.sem
		w.mu.Lock()
		w.checks = append(w.checks, c)
		w.mu.Unlock()
		for _, r := range refs {
			w.visit(r)
		}
	}()
}

// check verifies the objects of one store path and returns its references.
func (w *cacheWalk) check(path string) (Check, []string) {
	c := Check{What: "cache", Object: path}
	sp, err := nixstore.ParseStorePath(nixstore.DefaultStoreDir, path)
	if err != nil {
		c.Detail = err.Error()
		return c, nil
	}
	niKey := sp.Hash + ".narinfo"
	niURL := bucket.ObjectURL(w.b, niKey)
	data, err := fetchBody(w.ctx, w.b, niKey, fsutil.MaxNarinfo)
	if err != nil {
		c.Detail = err.Error()
		return c, nil
	}
	ni, err := nixstore.ParseNarInfo(data, niURL, nixstore.DefaultStoreDir)
	if err != nil {
		c.Detail = err.Error()
		return c, nil
	}
	var refs, problems []string
	for _, ref := range ni.References {
		refs = append(refs, ref.String())
	}
	if ni.StorePath != sp {
		problems = append(problems, fmt.Sprintf("%s: describes %s", niURL, ni.StorePath))
	}
	if signers := nixstore.VerifySignatures(ni.Fingerprint(), ni.Sigs, w.keys); len(signers) == 0 {
		problems = append(problems, fmt.Sprintf("%s: no valid signature by %s (signatures: %s)", niURL, keyNames(w.keys), strings.Join(sigNames(ni.Sigs), ", ")))
	}
	listing, err := checkNar(w.ctx, w.b, ni, w.listings)
	if err != nil {
		problems = append(problems, err.Error())
	} else if w.listings {
		if err := checkListing(w.ctx, w.b, sp.Hash+".ls", listing); err != nil {
			problems = append(problems, err.Error())
		}
	}
	c.Detail = strings.Join(problems, "; ")
	c.OK = len(problems) == 0
	return c, refs
}

// fetchBody reads a small object (narinfo, listing), undoing its
// Content-Encoding, and refuses one that decodes to more than limit bytes.
func fetchBody(ctx context.Context, b bucket.Bucket, key string, limit int64) ([]byte, error) {
	url := bucket.ObjectURL(b, key)
	info, err := b.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r, done, err := decompress(info.ContentEncoding, rc)
	if err != nil {
		return nil, fmt.Errorf("%s: Content-Encoding: %w", url, err)
	}
	defer done()
	return fsutil.ReadAllLimited(r, url, limit)
}

// decompress undoes a NAR's Compression or a body's Content-Encoding.
func decompress(method string, r io.Reader) (io.Reader, func(), error) {
	switch method {
	case "", "none", "identity":
		return r, func() {}, nil
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return d, d.Close, nil
	case "xz":
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
	got, err := fetchBody(ctx, b, key, fsutil.MaxListing)
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

func verifyGitTag(ctx context.Context, p *project.Project, t *Target, rec *artifacts.Record) Check {
	c := Check{What: "git", Object: "tag " + rec.Version}
	remote, err := gitflow.ResolveRemote(ctx, p, t.Env.Name)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.Object += " on " + remote.URL
	tag := "refs/tags/" + rec.Version
	refs, err := p.Git.LsRemote(ctx, remote.URL, tag, tag+"^{}")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	got := refs[tag+"^{}"]
	if got == "" {
		got = refs[tag]
	}
	switch {
	case got == "":
		c.Detail = "the remote has no such tag"
	case got != rec.Commit:
		c.Detail = fmt.Sprintf("points at %s, the release commit is %s", short(got), short(rec.Commit))
	default:
		c.OK = true
	}
	return c
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
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
