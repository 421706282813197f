package image

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/archive"
	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/layering"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
)

// Source is one system's image to push; exactly one field is set.
type Source struct {
	// Layout is an OCI layout written by Build (Dir/NAME-SYSTEM).
	Layout string
	// Input is built from the store while it is pushed: layers stream
	// from the store to the registry without an intermediate file.
	Input *Input
	// Archive is a docker-archive Nix built, pushed with its own layers.
	Archive *archive.Archive
	// Published is an image another destination holds (ReadPublished):
	// copied by digest.
	Published *Published
}

// PushOptions configure Push.
type PushOptions struct {
	// Dest is HOST[:PORT]/REPO or oci:DIR.
	Dest string
	// Insecure allows plain HTTP (always allowed for localhost).
	Insecure bool
	// Tags are put on the index, in order; at least one.
	Tags []string
	// Annotations are added to the index's, which are the images' labels.
	Annotations map[string]string
	Keychain    authn.Keychain    // nil: Docker and containers credentials
	Transport   http.RoundTripper // nil: http.DefaultTransport
	ChunkSize   int64             // PATCH size of chunked uploads
	Cache       *Cache
	// RelengVersion is part of the layer cache keys.
	RelengVersion string
	// Jobs is how many blobs are checked or sent at once (default 8).
	Jobs int
	// IndexRetry is how long a 404 on an index put is retried (the
	// registry not yet consistent); default one minute.
	IndexRetry time.Duration
	// Progress receives one line per step; nil is silent.
	Progress func(string)
	// UserAgent is sent to registries.
	UserAgent string
	// Sent, when set, is told of every object Push sends, once it is at
	// the destination — each blob uploaded or mounted, each image
	// manifest put, each tag put — as the plan.Object PlanPush gives it
	// (Why New, or Changed for a tag that named another index; a mount
	// says so in Detail). Calls are serialised.
	Sent func(plan.Object)
}

// PushResult says what a push did.
type PushResult struct {
	Dest      string         `json:"destination"`
	Tags      []string       `json:"tags"`
	Index     oci.Descriptor `json:"index"`
	Images    []PushedImage  `json:"images"`
	Present   int            `json:"layers_present"`
	Mounted   int            `json:"layers_mounted"`
	Uploaded  int            `json:"layers_uploaded"`
	Stats     registry.Stats `json:"sent"`
	Duration  time.Duration  `json:"-"`
	Recovered int            `json:"stale_cache_entries,omitempty"`
}

// PushedImage is one platform's image of a push.
type PushedImage struct {
	System   string         `json:"system"`
	Platform oci.Platform   `json:"platform"`
	Manifest oci.Descriptor `json:"manifest"`
}

func (o *PushOptions) say(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

func (o *PushOptions) sent(obj plan.Object) {
	if o.Sent != nil {
		o.Sent(obj)
	}
}

// CheckAccess checks, sending nothing that stays, that the credentials
// found for dest allow pushing there (SPEC §10.1).
func CheckAccess(ctx context.Context, dest string, opts PushOptions) error {
	t, err := openTarget(ctx, dest, opts, false)
	if err != nil {
		return err
	}
	return t.CheckPush(ctx)
}

// openTarget opens dest with the connection settings of opts; readOnly
// creates nothing and asks a registry for pull access only.
func openTarget(ctx context.Context, dest string, opts PushOptions, readOnly bool) (registry.Target, error) {
	return registry.Open(ctx, dest, registry.Options{
		Insecure: opts.Insecure, Keychain: opts.Keychain, Transport: opts.Transport,
		ChunkSize: opts.ChunkSize, UserAgent: opts.UserAgent, ReadOnly: readOnly,
	})
}

// pLayer is a layer on its way to a target.
type pLayer struct {
	mediaType string
	known     *layer.Digests                               // digests known before sending (layout, archive, cache)
	key       string                                       // layer cache key, "" for none
	source    string                                       // where the bytes come from, for plans
	file      string                                       // blob file (layout)
	blob      func(context.Context) (io.ReadCloser, error) // the blob as another destination holds it
	mount     []string                                     // repositories it may be mounted from
	write     func(io.Writer) error
	comp      layer.Compression
	arch      *archive.Layer
	final     layer.Digests
	present   bool
	narSize   int64 // for layers made on the way: how big they are before compression
}

// pImage is one platform's image on its way to a target.
type pImage struct {
	system   string
	source   string // the layout or archive it comes from ("" from the store)
	platform oci.Platform
	labels   map[string]string
	layers   []*pLayer
	arch     *archive.Archive
	config   func([]layer.Digests) ([]byte, error)
	manifest []byte // as built; nil: made from config and layers
}

// Push sends the sources — one per system — to opts.Dest: every blob the
// destination lacks (HEAD first; mounted from another repository of the
// same registry when the cache knows one), each image manifest untagged,
// then one OCI index with a platform entry per image and the images'
// labels as annotations, put to every tag.
//
// What is already there is not sent again: a blob the destination has, a
// manifest it holds by digest, a tag that names the same index. PlanPush
// says beforehand what Push sends.
func Push(ctx context.Context, sources []Source, opts PushOptions) (*PushResult, error) {
	start := time.Now()
	imgs, target, err := prepareAll(ctx, sources, opts, false)
	if err != nil {
		return nil, err
	}
	if f := opts.Sent; f != nil {
		var mu sync.Mutex
		opts.Sent = func(o plan.Object) { mu.Lock(); defer mu.Unlock(); f(o) }
	}
	dest := target.String()
	res := &PushResult{Dest: dest, Tags: opts.Tags}
	var manifests []oci.Descriptor
	for _, img := range imgs {
		if runctx.Stopping(ctx) { // asked to stop: no tag names what is not there
			return nil, runctx.ErrInterrupted
		}
		desc, err := pushImage(ctx, target, img, opts, res)
		if err != nil {
			return nil, fmt.Errorf("push %s image to %s: %w", img.system, dest, err)
		}
		manifests = append(manifests, desc)
		res.Images = append(res.Images, PushedImage{System: img.system, Platform: img.platform, Manifest: desc})
	}
	ib, err := indexBlob(imgs, manifests, opts.Annotations)
	if err != nil {
		return nil, err
	}
	res.Index = oci.Descriptor{MediaType: oci.MediaTypeIndex, Digest: oci.Digest(ib), Size: int64(len(ib))}
	for _, tag := range distinct(opts.Tags) {
		if runctx.Stopping(ctx) {
			return nil, runctx.ErrInterrupted
		}
		var now oci.Descriptor
		var found bool
		if err := withRetry(ctx, func() (err error) { now, found, err = target.Resolve(ctx, tag); return }); err != nil {
			return nil, fmt.Errorf("tag %s:%s: %w", dest, tag, err)
		}
		if found && now.Digest == res.Index.Digest {
			opts.say("%s:%s already names %s", dest, tag, res.Index.Digest)
			continue
		}
		if err := putIndex(ctx, target, tag, ib, opts.IndexRetry); err != nil {
			return nil, fmt.Errorf("tag %s:%s: %w", dest, tag, err)
		}
		obj := tagObject(dest, tag, res.Index)
		if found {
			obj.Why, obj.Detail = plan.Changed, "named "+now.Digest
		}
		opts.sent(obj)
		opts.say("tagged %s:%s → %s", dest, tag, res.Index.Digest)
	}
	res.Stats = target.Stats()
	res.Duration = time.Since(start)
	return res, nil
}

// prepareAll reads and checks every source, then opens opts.Dest
// (readOnly: creating nothing, asking for pull access only): nothing is
// requested before all sources are valid.
func prepareAll(ctx context.Context, sources []Source, opts PushOptions, readOnly bool) ([]*pImage, registry.Target, error) {
	if len(sources) == 0 {
		return nil, nil, errors.New("nothing to push")
	}
	if len(opts.Tags) == 0 {
		return nil, nil, errors.New("no tags to push: give at least one")
	}
	for _, tag := range opts.Tags {
		if err := registry.ValidTag(tag); err != nil {
			return nil, nil, err
		}
	}
	var imgs []*pImage
	seen := map[string]string{}
	for _, s := range sources {
		img, err := prepare(s, opts)
		if err != nil {
			return nil, nil, err
		}
		key := img.platform.OS + "/" + img.platform.Architecture + "/" + img.platform.Variant
		if prev, dup := seen[key]; dup {
			return nil, nil, fmt.Errorf("two images for platform %s (%s and %s): an index holds one per platform", key, prev, img.system)
		}
		seen[key] = img.system
		imgs = append(imgs, img)
	}
	t, err := openTarget(ctx, opts.Dest, opts, readOnly)
	return imgs, t, err
}

// distinct drops repeated tags (templates giving the same tag twice).
func distinct(tags []string) []string {
	var out []string
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// indexBlob is the index Push puts to every tag: a platform entry per
// image manifest, in the order of the sources, annotated with the images'
// labels (the first image's value wins) and then opts' annotations.
func indexBlob(imgs []*pImage, manifests []oci.Descriptor, annotations map[string]string) ([]byte, error) {
	index := oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Annotations: map[string]string{}}
	// The platforms in one order whatever order the sources came in, so
	// every caller (build, image push, upload) puts the same index.
	order := make([]int, len(imgs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return systemOf(imgs[order[a]].platform) < systemOf(imgs[order[b]].platform) })
	for _, i := range order {
		img := imgs[i]
		platform := img.platform
		index.Manifests = append(index.Manifests, oci.Descriptor{MediaType: manifests[i].MediaType, Digest: manifests[i].Digest, Size: manifests[i].Size, Platform: &platform})
		for k, v := range img.labels {
			if _, ok := index.Annotations[k]; !ok {
				index.Annotations[k] = v
			}
		}
	}
	for k, v := range annotations {
		index.Annotations[k] = v
	}
	if len(index.Annotations) == 0 {
		index.Annotations = nil
	}
	return json.Marshal(index)
}

// imageBlobs are the config and the manifest of img for layers with
// these digests.
func imageBlobs(img *pImage, digests []layer.Digests) (cfg, man []byte, err error) {
	descs := make([]oci.Descriptor, len(img.layers))
	for i, l := range img.layers {
		descs[i] = oci.Descriptor{MediaType: l.mediaType, Digest: digests[i].Digest, Size: digests[i].Size}
	}
	if cfg, err = img.config(digests); err != nil {
		return nil, nil, err
	}
	man = img.manifest
	if man == nil {
		man, err = manifestBlob(cfg, descs)
	}
	return cfg, man, err
}

// putIndex puts the index to tag, retrying 404s (a registry that does not
// see the manifests just pushed yet; SPEC §8.5) and transient failures
// under the shared retry policy for up to limit (default a minute).
func putIndex(ctx context.Context, t registry.Target, tag string, body []byte, limit time.Duration) error {
	p := retry.Policy{Attempts: -1, Max: 8 * time.Second, MaxElapsed: cmp.Or(limit, time.Minute)}
	retryable := func(err error) bool { return registry.NotFound(err) || registry.Transient(err) }
	err := p.Do(ctx, retryable, func(int) error { return t.PutManifest(ctx, tag, oci.MediaTypeIndex, body) }, nil)
	if err != nil && retryable(err) && ctx.Err() == nil {
		return fmt.Errorf("%w (still failing after retrying for %s)", err, p.MaxElapsed)
	}
	return err
}

// prepare reads a source into a pImage.
func prepare(s Source, opts PushOptions) (*pImage, error) {
	switch {
	case s.Layout != "":
		return prepareLayout(s.Layout)
	case s.Published != nil:
		return preparePublished(s.Published)
	case s.Input != nil:
		p, err := s.Input.Plan(opts.RelengVersion)
		if err != nil {
			return nil, err
		}
		img := &pImage{system: p.In.System, platform: p.Platform, labels: p.In.Config.Labels, config: p.ConfigBlob}
		for _, l := range p.Layers {
			pl := &pLayer{mediaType: p.In.Compression.MediaType(), key: l.Key, write: l.write, comp: p.In.Compression, narSize: l.Size, source: layerSource(l)}
			if d, ok := opts.Cache.Get(l.Key); ok {
				pl.known = &d
			}
			img.layers = append(img.layers, pl)
		}
		return img, nil
	case s.Archive != nil:
		a := s.Archive
		img := &pImage{system: systemOf(a.Platform), source: a.Path, platform: a.Platform, labels: a.ConfigFile.Config.Labels, arch: a}
		cfg := a.Config
		img.config = func([]layer.Digests) ([]byte, error) { return cfg, nil }
		for i := range a.Layers {
			al := &a.Layers[i]
			pl := &pLayer{arch: al, comp: layer.Gzip, source: a.Path}
			switch al.Compression {
			case "gzip", "zstd":
				pl.mediaType = layer.Compression(al.Compression).MediaType()
				pl.known = &layer.Digests{Digest: al.Digest, Size: al.Size, DiffID: al.DiffID, DiffSize: al.DiffSize}
			default: // an uncompressed tar, as dockerTools writes: compressed on the way
				pl.mediaType = layer.Gzip.MediaType()
				pl.key = layerKey(opts.RelengVersion, "archive", string(layer.Gzip), al.DiffID)
				if d, ok := opts.Cache.Get(pl.key); ok && d.DiffID == al.DiffID {
					pl.known = &d
				}
			}
			img.layers = append(img.layers, pl)
		}
		return img, nil
	}
	return nil, errors.New("empty image source")
}

func systemOf(p oci.Platform) string {
	for _, s := range []string{"x86_64-linux", "aarch64-linux", "i686-linux", "armv7l-linux", "armv6l-linux", "riscv64-linux", "powerpc64le-linux", "s390x-linux", "loongarch64-linux"} {
		if q, _ := oci.PlatformOf(s); q.Architecture == p.Architecture && (q.Variant == p.Variant || p.Variant == "") {
			return s
		}
	}
	return p.OS + "/" + p.Architecture
}

// prepareLayout reads the image of an OCI layout written by Build.
func prepareLayout(dir string) (*pImage, error) {
	read := func(name string) ([]byte, error) {
		data, err := fsutil.ReadFile(filepath.Join(dir, name), fsutil.MaxManifestJSON)
		if err != nil {
			return nil, fmt.Errorf("OCI layout %s: %w (run `releng image build` again)", dir, err)
		}
		return data, nil
	}
	blob := func(d string) string { return filepath.Join("blobs", "sha256", oci.Hex(d)) }
	ib, err := read("index.json")
	if err != nil {
		return nil, err
	}
	var idx oci.Index
	if err := json.Unmarshal(ib, &idx); err != nil || len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("OCI layout %s: index.json must hold exactly one image manifest, as `releng image build` writes (%v)", dir, err)
	}
	md := idx.Manifests[0]
	if err := registry.ValidDigest(md.Digest); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	mb, err := read(blob(md.Digest))
	if err != nil {
		return nil, err
	}
	if oci.Digest(mb) != md.Digest {
		return nil, fmt.Errorf("OCI layout %s: manifest %s is corrupt (its digest differs): run `releng image build` again", dir, md.Digest)
	}
	var m oci.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("OCI layout %s: manifest: %v", dir, err)
	}
	if err := registry.ValidDigest(m.Config.Digest); err != nil {
		return nil, fmt.Errorf("OCI layout %s: config: %w", dir, err)
	}
	cb, err := read(blob(m.Config.Digest))
	if err != nil {
		return nil, err
	}
	var cf oci.ConfigFile
	if err := json.Unmarshal(cb, &cf); err != nil || len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("OCI layout %s: config %s does not match the manifest's %d layers", dir, m.Config.Digest, len(m.Layers))
	}
	platform := oci.Platform{Architecture: cf.Architecture, OS: cf.OS, Variant: cf.Variant}
	if md.Platform != nil {
		platform = *md.Platform
	}
	img := &pImage{system: systemOf(platform), source: dir, platform: platform, labels: cf.Config.Labels, manifest: mb}
	img.config = func([]layer.Digests) ([]byte, error) { return cb, nil }
	for i, l := range m.Layers {
		if err := registry.ValidDigest(l.Digest); err != nil {
			return nil, fmt.Errorf("OCI layout %s: layer %d: %w", dir, i+1, err)
		}
		file := filepath.Join(dir, blob(l.Digest))
		if st, err := os.Stat(file); err != nil || st.Size() != l.Size {
			return nil, fmt.Errorf("OCI layout %s: layer %s is missing or has the wrong size: run `releng image build` again", dir, l.Digest)
		}
		img.layers = append(img.layers, &pLayer{mediaType: l.MediaType, file: file, source: file,
			known: &layer.Digests{Digest: l.Digest, Size: l.Size, DiffID: cf.RootFS.DiffIDs[i]}})
	}
	return img, nil
}

// withRetry runs f while it fails transiently (registry.Transient), under
// the shared retry policy: backoff with jitter, a registry's Retry-After
// honoured, each retry reported to the hook the caller attached to ctx
// (retry.WithOnRetry).
func withRetry(ctx context.Context, f func() error) error {
	return retry.Policy{}.Do(ctx, registry.Transient, func(int) error { return f() }, nil)
}

// pushImage sends one image's blobs and its manifest (untagged).
func pushImage(ctx context.Context, t registry.Target, img *pImage, opts PushOptions, res *PushResult) (oci.Descriptor, error) {
	njobs := opts.Jobs
	if njobs <= 0 {
		njobs = 8
	}
	remote, _ := t.(*registry.Remote)
	var mu sync.Mutex
	count := func(p *int) { mu.Lock(); *p++; mu.Unlock() }

	dest := t.String()
	// 1. What is there already. A blob twice in the image (the same
	// digest) is asked for, and sent, once.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(njobs)
	first := map[string]*pLayer{}
	for _, l := range img.layers {
		if l.known == nil {
			continue
		}
		if first[l.known.Digest] != nil {
			continue
		}
		first[l.known.Digest] = l
		g.Go(func() error {
			var ok bool
			err := withRetry(gctx, func() (err error) { ok, err = t.HasBlob(gctx, l.known.Digest); return })
			if err != nil {
				return err
			}
			if !ok && remote != nil {
				if ok, err = t.Mount(gctx, l.known.Digest, append(l.mount, opts.Cache.Locations(l.known.Digest)...)); err != nil {
					return err
				}
				if ok {
					count(&res.Mounted)
					obj := blobObject(dest, *l.known, l.source)
					obj.Detail = "mounted from another repository of the registry"
					opts.sent(obj)
				}
			} else if ok {
				count(&res.Present)
			}
			if ok {
				l.present, l.final = true, *l.known
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return oci.Descriptor{}, err
	}
	var missing []*pLayer
	var bytes int64
	for _, l := range img.layers {
		if l.known != nil && first[l.known.Digest] != l {
			// The same blob as an earlier layer: present or sent with it.
			l.present, l.final = first[l.known.Digest].present, *l.known
			if l.present {
				count(&res.Present)
			}
			continue
		}
		if !l.present {
			missing = append(missing, l)
			if l.known != nil {
				bytes += l.known.Size
			}
		}
	}
	opts.say("%s (%s): %d layers, %d to send%s", opts.Dest, img.system, len(img.layers), len(missing), sizeNote(bytes, missing))

	// 2. Send what is missing.
	if img.arch != nil {
		if err := sendArchiveLayers(ctx, t, img, missing, opts); err != nil {
			return oci.Descriptor{}, err
		}
	} else {
		// Biggest first; streamed (unknown) layers are as big as their NARs.
		sort.SliceStable(missing, func(i, j int) bool { return weight(missing[i]) > weight(missing[j]) })
		g, gctx = errgroup.WithContext(ctx)
		limit := njobs
		if len(missing) > 0 && missing[0].file == "" {
			// Layers made on the way are CPU-bound and hold compression
			// blocks and upload chunks: as many as there are CPUs, at most 4.
			limit = min(njobs, max(runtime.GOMAXPROCS(0), 1), 4)
		}
		g.SetLimit(limit)
		stopped := false
		for _, l := range missing {
			if stopped = runctx.Stopping(ctx); stopped {
				break // the layers in flight finish
			}
			g.Go(func() error {
				if err := sendLayer(gctx, t, l, opts, res, &mu); err != nil {
					return err
				}
				opts.sent(blobObject(dest, l.final, l.source))
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return oci.Descriptor{}, err
		}
		if stopped {
			return oci.Descriptor{}, runctx.ErrInterrupted
		}
	}
	res.Uploaded += len(missing)

	if img.arch != nil {
		reported := map[string]bool{}
		for _, l := range missing {
			if !reported[l.final.Digest] {
				reported[l.final.Digest] = true
				opts.sent(blobObject(dest, l.final, l.source))
			}
		}
	}

	// 3. Config and manifest.
	digests := make([]layer.Digests, len(img.layers))
	for i, l := range img.layers {
		digests[i] = l.final
	}
	cfg, man, err := imageBlobs(img, digests)
	if err != nil {
		return oci.Descriptor{}, err
	}
	cd := oci.Digest(cfg)
	var has bool
	if err := withRetry(ctx, func() (err error) { has, err = t.HasBlob(ctx, cd); return }); err != nil {
		return oci.Descriptor{}, err
	}
	if !has {
		if err := withRetry(ctx, func() error { return t.PutBlob(ctx, cd, int64(len(cfg)), strings.NewReader(string(cfg))) }); err != nil {
			return oci.Descriptor{}, fmt.Errorf("config: %w", err)
		}
		opts.sent(blobObject(dest, layer.Digests{Digest: cd, Size: int64(len(cfg))}, img.source))
	}
	md := oci.Digest(man)
	mdesc := oci.Descriptor{MediaType: oci.MediaTypeManifest, Digest: md, Size: int64(len(man))}
	if err := withRetry(ctx, func() (err error) { _, has, err = t.Resolve(ctx, md); return }); err != nil {
		return oci.Descriptor{}, err
	}
	if !has {
		if err := withRetry(ctx, func() error { return t.PutManifest(ctx, md, oci.MediaTypeManifest, man) }); err != nil {
			return oci.Descriptor{}, fmt.Errorf("manifest: %w", err)
		}
		opts.sent(manifestObject(dest, img, mdesc))
	}
	if remote != nil {
		for _, d := range append(digests, layer.Digests{Digest: cd}) {
			opts.Cache.AddLocation(d.Digest, remote.Repository())
		}
	}
	return mdesc, nil
}

func weight(l *pLayer) int64 {
	if l.known != nil {
		return l.known.Size
	}
	if l.arch != nil {
		return l.arch.Size
	}
	return l.narSize
}

func sizeNote(known int64, missing []*pLayer) string {
	unknown := 0
	for _, l := range missing {
		if l.known == nil {
			unknown++
		}
	}
	switch {
	case unknown > 0 && known > 0:
		return fmt.Sprintf(" (%s, and %d built from the store on the way)", layering.FormatSize(known), unknown)
	case unknown > 0:
		return fmt.Sprintf(" (%d built from the store on the way)", unknown)
	case known > 0:
		return " (" + layering.FormatSize(known) + ")"
	}
	return ""
}

// sendLayer uploads one layer of a layout or store source.
func sendLayer(ctx context.Context, t registry.Target, l *pLayer, opts PushOptions, res *PushResult, mu *sync.Mutex) error {
	if l.file != "" {
		return withRetry(ctx, func() error {
			f, err := os.Open(l.file)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := t.PutBlob(ctx, l.known.Digest, l.known.Size, f); err != nil {
				return err
			}
			l.final = *l.known
			return nil
		})
	}
	if l.blob != nil {
		return withRetry(ctx, func() error {
			rc, err := l.blob(ctx)
			if err != nil {
				return err
			}
			defer rc.Close()
			if err := t.PutBlob(ctx, l.known.Digest, l.known.Size, rc); err != nil {
				return err
			}
			l.final = *l.known
			return nil
		})
	}
	// From the store: the tar is made and compressed while it is sent.
	err := withRetry(ctx, func() error {
		_, err := t.StreamBlob(ctx, func(w io.Writer) (string, error) {
			d, err := layer.Build(w, l.comp, l.write)
			l.final = d
			return d.Digest, err
		})
		return err
	})
	if err != nil {
		return err
	}
	if l.known != nil && l.known.Digest != l.final.Digest {
		mu.Lock()
		res.Recovered++
		mu.Unlock()
	}
	opts.Cache.Put(l.key, l.final)
	return nil
}

// sendArchiveLayers streams the missing layers of a docker-archive in one
// pass over it: compressed layers as they are, tar layers compressed on
// the way.
func sendArchiveLayers(ctx context.Context, t registry.Target, img *pImage, missing []*pLayer, opts PushOptions) error {
	byEntry := map[string][]*pLayer{}
	for _, l := range missing {
		byEntry[l.arch.Entry] = append(byEntry[l.arch.Entry], l)
	}
	return img.arch.Stream(func(al archive.Layer) bool { return len(byEntry[al.Entry]) > 0 }, func(al archive.Layer, r io.Reader) error {
		if runctx.Stopping(ctx) {
			return runctx.ErrInterrupted
		}
		ls := byEntry[al.Entry]
		l := ls[0]
		if l.known != nil && al.Compression != "" {
			if err := t.PutBlob(ctx, l.known.Digest, l.known.Size, r); err != nil {
				return fmt.Errorf("layer %s: %w", al.Entry, err)
			}
			l.final = *l.known
		} else {
			_, err := t.StreamBlob(ctx, func(w io.Writer) (string, error) {
				d, err := layer.Compress(w, layer.Gzip, r)
				l.final = d
				return d.Digest, err
			})
			if err != nil {
				return fmt.Errorf("layer %s: %w", al.Entry, err)
			}
			opts.Cache.Put(l.key, l.final)
		}
		for _, other := range ls[1:] {
			other.final = l.final
		}
		return nil
	})
}
