package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/gitflow"
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

// maxNarinfo bounds a narinfo read from a cache.
const maxNarinfo = 1 << 20

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
		var roots []string
		for _, sys := range sortedKeys(rec.Manifest) {
			roots = append(roots, rec.Manifest[sys])
		}
		for _, c := range verifyCache(ctx, t, keys, roots) {
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

// verifyCache walks the closure of roots through the cache's narinfos,
// checking each signature and each NAR's hash and size.
func verifyCache(ctx context.Context, t *Target, keys []nixstore.PublicKey, roots []string) []Check {
	var checks []Check
	seen := map[string]bool{}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		c := Check{What: "cache", Object: path}
		ni, err := fetchNarInfo(ctx, t.Cache, path)
		if err != nil {
			c.Detail = err.Error()
			checks = append(checks, c)
			continue
		}
		for _, ref := range ni.References {
			queue = append(queue, ref.String())
		}
		if signers := nixstore.VerifySignatures(ni.Fingerprint(), ni.Sigs, keys); len(signers) == 0 {
			c.Detail = fmt.Sprintf("no valid signature by %s (signatures: %s)", keyNames(keys), strings.Join(sigNames(ni.Sigs), ", "))
			checks = append(checks, c)
			continue
		}
		if err := checkNar(ctx, t.Cache, ni); err != nil {
			c.Detail = err.Error()
		} else {
			c.OK = true
		}
		checks = append(checks, c)
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].Object < checks[j].Object })
	return checks
}

func fetchNarInfo(ctx context.Context, b bucket.Bucket, path string) (*nixstore.NarInfo, error) {
	sp, err := nixstore.ParseStorePath(nixstore.DefaultStoreDir, path)
	if err != nil {
		return nil, err
	}
	key := sp.Hash + ".narinfo"
	info, err := b.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	data, err := readAll(ctx, b, key, maxNarinfo)
	if err != nil {
		return nil, err
	}
	if data, err = decode(info.ContentEncoding, data); err != nil {
		return nil, fmt.Errorf("%s: %w", bucket.ObjectURL(b, key), err)
	}
	return nixstore.ParseNarInfo(data, bucket.ObjectURL(b, key), nixstore.DefaultStoreDir)
}

func readAll(ctx context.Context, b bucket.Bucket, key string, limit int64) ([]byte, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", bucket.ObjectURL(b, key), limit)
	}
	return data, nil
}

func decode(encoding string, data []byte) ([]byte, error) {
	switch encoding {
	case "", "identity":
		return data, nil
	case "zstd":
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(data, nil)
	case "xz":
		r, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(r, maxNarinfo))
	}
	return nil, fmt.Errorf("unsupported Content-Encoding %q", encoding)
}

func checkNar(ctx context.Context, b bucket.Bucket, ni *nixstore.NarInfo) error {
	rc, err := b.Get(ctx, ni.URL)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	switch ni.Compression {
	case "zstd":
		d, err := zstd.NewReader(rc, zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return err
		}
		defer d.Close()
		r = d
	case "xz":
		x, err := xz.NewReader(rc)
		if err != nil {
			return err
		}
		r = x
	case "none", "":
	default:
		return fmt.Errorf("%s: unsupported compression %q", ni.URL, ni.Compression)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, int64(ni.NarSize)+1))
	if err != nil {
		return fmt.Errorf("%s: %w", ni.URL, err)
	}
	var got nixstore.Hash
	copy(got[:], h.Sum(nil))
	if uint64(n) != ni.NarSize || got != ni.NarHash {
		return fmt.Errorf("%s: NAR has %d bytes and hash %s, the narinfo says %d and %s", ni.URL, n, got, ni.NarSize, ni.NarHash)
	}
	return nil
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
