package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/image/archive"
	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/plan"
)

// PlanPush returns the objects Push(ctx, sources, opts) would send to
// opts.Dest (SPEC §10.7), found by asking the destination and sending
// nothing — an oci: directory that does not exist is not created, and a
// registry is asked for pull access only:
//   - one object per blob, layers and configs, each once (Kind blob, Key
//     and Digest the blob's digest): New when the destination lacks it
//     (HEAD), Present when it has it;
//   - one per image manifest (Kind manifest, Key its digest; Detail names
//     the system): New or Present;
//   - one per tag of opts.Tags, in order, each once (Kind index, Key the
//     tag, Digest and Size those of the index Push puts there): New when
//     the tag is absent, Present when it names that index already,
//     Changed when it names another (Detail: "names sha256:…").
//
// Every object's Dest is the destination as users paste it: oci:/ABS/DIR
// or HOST[:PORT]/REPO. A New blob the layer cache knows in another
// repository of the same registry says in Detail that Push may mount it
// (a mounted blob is sent: the destination did not have it). Executing
// the plan is calling Push with the same sources and options: it sends
// exactly the New and Changed objects (PushOptions.Sent reports each).
//
// Layouts (BuiltSources) and docker-archives (ArchiveSources) plan exactly:
// their digests are known. The uncompressed layer tars of a docker-archive
// (dockerTools writes those) are gzip-compressed here, with the compressor
// Push uses, to learn the digests Push will send, which are recorded in
// opts.Cache so that Push finds them there; without a usable cache Push
// compresses such a layer on the way and sends it without asking, and the
// plan says so (New, whatever the destination holds). A store source
// whose layer the cache does not know gives a layer of Size -1 and Digest
// "" (it is built on the way), and so do its config, manifest and index;
// its tags are New, or Changed when they name an index already.
func PlanPush(ctx context.Context, sources []Source, opts PushOptions) ([]plan.Object, error) {
	imgs, t, err := prepareAll(ctx, sources, opts, true)
	if err != nil {
		return nil, err
	}
	dest := t.String()
	unremembered, err := learnArchiveDigests(imgs, opts)
	if err != nil {
		return nil, err
	}
	var objs []plan.Object
	// asks decide the Why of objs[i] by asking the destination; they run
	// once every object is listed.
	var asks []func(context.Context) error
	seen := map[string]bool{}
	// addBlob lists a blob once; Push mounts layers only, and sends the
	// layers it cannot know without asking.
	addBlob := func(d layer.Digests, source string, isLayer, sendAnyway bool) {
		if seen[d.Digest] {
			return
		}
		seen[d.Digest] = true
		objs = append(objs, blobObject(dest, d, source))
		i := len(objs) - 1
		if sendAnyway {
			objs[i].Detail = "compressed on the way and sent without asking: no layer cache to give Push its digest"
			return
		}
		asks = append(asks, func(ctx context.Context) error {
			var ok bool
			if err := withRetry(ctx, func() (err error) { ok, err = t.HasBlob(ctx, d.Digest); return }); err != nil {
				return fmt.Errorf("%s: blob %s: %w", dest, d.Digest, err)
			}
			if ok {
				objs[i].Why = plan.Present
			} else if from := mountSources(t, opts.Cache, d.Digest); isLayer && len(from) > 0 {
				objs[i].Detail = "may be mounted from " + strings.Join(from, ", ")
			}
			return nil
		})
	}
	unknown := func(key, source string) plan.Object {
		return plan.Object{Dest: dest, Key: key, Kind: plan.KindBlob, Size: -1, Why: plan.New,
			Detail: "made from the store on the way: its digest is known once it is built", Source: source}
	}
	var manifests []oci.Descriptor
	complete := true
	for _, img := range imgs {
		digests := make([]layer.Digests, len(img.layers))
		known := true
		for i, l := range img.layers {
			if l.known == nil {
				known = false
				objs = append(objs, unknown(fmt.Sprintf("%s layer %d", img.system, i+1), l.source))
				continue
			}
			digests[i] = *l.known
			addBlob(*l.known, l.source, true, unremembered[l])
		}
		if !known {
			complete = false
			objs = append(objs, unknown(img.system+" config", ""))
			m := unknown(img.system+" manifest", "")
			m.Kind = plan.KindManifest
			objs = append(objs, m)
			continue
		}
		cfg, man, err := imageBlobs(img, digests)
		if err != nil {
			return nil, err
		}
		addBlob(layer.Digests{Digest: oci.Digest(cfg), Size: int64(len(cfg))}, img.source, false, false)
		md := oci.Descriptor{MediaType: oci.MediaTypeManifest, Digest: oci.Digest(man), Size: int64(len(man))}
		manifests = append(manifests, md)
		objs = append(objs, manifestObject(dest, img, md))
		i := len(objs) - 1
		asks = append(asks, func(ctx context.Context) error {
			var ok bool
			if err := withRetry(ctx, func() (err error) { _, ok, err = t.Resolve(ctx, md.Digest); return }); err != nil {
				return fmt.Errorf("%s: manifest %s: %w", dest, md.Digest, err)
			}
			if ok {
				objs[i].Why = plan.Present
			}
			return nil
		})
	}
	index := oci.Descriptor{Size: -1}
	if complete {
		ib, err := indexBlob(imgs, manifests, opts.Annotations)
		if err != nil {
			return nil, err
		}
		index = oci.Descriptor{MediaType: oci.MediaTypeIndex, Digest: oci.Digest(ib), Size: int64(len(ib))}
	}
	for _, tag := range distinct(opts.Tags) {
		objs = append(objs, tagObject(dest, tag, index))
		i := len(objs) - 1
		asks = append(asks, func(ctx context.Context) error {
			var now oci.Descriptor
			var ok bool
			if err := withRetry(ctx, func() (err error) { now, ok, err = t.Resolve(ctx, tag); return }); err != nil {
				return fmt.Errorf("%s:%s: %w", dest, tag, err)
			}
			switch {
			case !ok:
			case now.Digest == index.Digest:
				objs[i].Why = plan.Present
			case index.Digest == "":
				objs[i].Why, objs[i].Detail = plan.Changed, "names "+now.Digest+"; the new index is known once the layers are built"
			default:
				objs[i].Why, objs[i].Detail = plan.Changed, "names "+now.Digest
			}
			return nil
		})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pushJobs(opts))
	for _, ask := range asks {
		g.Go(func() error { return ask(gctx) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return objs, nil
}

func pushJobs(opts PushOptions) int {
	if opts.Jobs > 0 {
		return opts.Jobs
	}
	return 8
}

// learnArchiveDigests compresses, as Push does, the uncompressed layers of
// docker-archives whose digests the cache does not know, and records them
// there for Push. It returns the layers whose digests the cache could not
// keep: Push will not know them, so it sends them without asking.
func learnArchiveDigests(imgs []*pImage, opts PushOptions) (map[*pLayer]bool, error) {
	unremembered := map[*pLayer]bool{}
	for _, img := range imgs {
		byEntry := map[string][]*pLayer{}
		for _, l := range img.layers {
			if l.arch != nil && l.known == nil {
				byEntry[l.arch.Entry] = append(byEntry[l.arch.Entry], l)
			}
		}
		if len(byEntry) == 0 {
			continue
		}
		err := img.arch.Stream(func(al archive.Layer) bool { return len(byEntry[al.Entry]) > 0 }, func(al archive.Layer, r io.Reader) error {
			d, err := layer.Compress(io.Discard, layer.Gzip, r)
			if err != nil {
				return fmt.Errorf("docker-archive %s: layer %s: %w", img.arch.Path, al.Entry, err)
			}
			for _, l := range byEntry[al.Entry] {
				known := d
				l.known = &known
				opts.Cache.Put(l.key, d)
				if got, ok := opts.Cache.Get(l.key); !ok || got != d {
					unremembered[l] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return unremembered, nil
}

// mountSources lists the repositories of the destination's registry that
// the cache says hold the blob, as Push tries to mount from them.
func mountSources(t registry.Target, cache *Cache, digest string) []string {
	remote, ok := t.(*registry.Remote)
	if !ok {
		return nil
	}
	own := remote.Repository()
	host := own[:strings.IndexByte(own, '/')+1]
	var out []string
	for _, loc := range cache.Locations(digest) {
		if strings.HasPrefix(loc, host) && loc != own {
			out = append(out, loc)
		}
	}
	return out
}

func blobObject(dest string, d layer.Digests, source string) plan.Object {
	return plan.Object{Dest: dest, Key: d.Digest, Kind: plan.KindBlob, Size: d.Size, Digest: d.Digest, Why: plan.New, Source: source}
}

func manifestObject(dest string, img *pImage, d oci.Descriptor) plan.Object {
	return plan.Object{Dest: dest, Key: d.Digest, Kind: plan.KindManifest, Size: d.Size, Digest: d.Digest, Why: plan.New, Detail: img.system + " image", Source: img.source}
}

func tagObject(dest, tag string, index oci.Descriptor) plan.Object {
	return plan.Object{Dest: dest, Key: tag, Kind: plan.KindIndex, Size: index.Size, Digest: index.Digest, Why: plan.New}
}

// layerSource names the store paths of a layer made from the store.
func layerSource(l *LayerSpec) string {
	if l.Kind == KindTop {
		return "top layer: " + l.Why
	}
	return strings.Join(l.Paths, " ")
}

// CheckPushed reads back objects of push plans — PlanPush's, typically
// made again once the push is done — at their destinations, and returns
// for each nil or an error that names it and says what differs:
//   - a blob missing, or of another size; in an oci: layout its bytes are
//     also hashed (a registry's blobs are not downloaded: the registry
//     addressed them by digest when they were put);
//   - an image manifest missing, or whose bytes hash to something else;
//   - a tag missing, naming another index than the planned one, naming an
//     index the destination lacks or whose bytes hash to something else,
//     an index that does not list exactly the image manifests objs plan
//     for the same destination, or that lists one the destination lacks.
//
// An object whose digest the plan did not know (Size -1) cannot be
// checked and says so. Each destination is opened once, to read only,
// with opts' connection settings (Insecure, Keychain, Transport,
// UserAgent); opts.Jobs objects are read at once.
func CheckPushed(ctx context.Context, objs []plan.Object, opts PushOptions) []error {
	errs := make([]error, len(objs))
	targets := map[string]registry.Target{}
	openErr := map[string]error{}
	// The manifests planned for each destination: what its indexes list.
	planned := map[string]map[string]plan.Object{}
	for _, o := range objs {
		if _, done := targets[o.Dest]; !done && openErr[o.Dest] == nil {
			t, err := openTarget(ctx, o.Dest, opts, true)
			targets[o.Dest], openErr[o.Dest] = t, err
		}
		if o.Kind == plan.KindManifest && o.Digest != "" {
			if planned[o.Dest] == nil {
				planned[o.Dest] = map[string]plan.Object{}
			}
			planned[o.Dest][o.Digest] = o
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, pushJobs(opts))
	for i, o := range objs {
		if err := openErr[o.Dest]; err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = checkObject(ctx, targets[o.Dest], o, planned[o.Dest])
		}()
	}
	wg.Wait()
	return errs
}

// checkObject reads back one object.
func checkObject(ctx context.Context, t registry.Target, o plan.Object, manifests map[string]plan.Object) error {
	if o.Kind != plan.KindIndex && o.Digest == "" {
		return fmt.Errorf("%s: %s: the plan does not know its digest (made from the store on the way): plan again once it is pushed", o.Dest, o.Key)
	}
	switch o.Kind {
	case plan.KindBlob:
		return checkBlob(ctx, t, o)
	case plan.KindManifest:
		_, err := checkManifest(ctx, t, o.Digest, o.Size)
		if err != nil {
			return fmt.Errorf("%s: manifest %s (%s): %w", o.Dest, o.Digest, o.Detail, err)
		}
		return nil
	case plan.KindIndex:
		if err := checkTag(ctx, t, o, manifests); err != nil {
			return fmt.Errorf("%s:%s: %w", o.Dest, o.Key, err)
		}
		return nil
	}
	return fmt.Errorf("%s: %s: not an image object (kind %q)", o.Dest, o.Key, o.Kind)
}

func checkBlob(ctx context.Context, t registry.Target, o plan.Object) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: blob %s: %s", o.Dest, o.Digest, fmt.Sprintf(format, args...))
	}
	var size int64
	var found bool
	if err := withRetry(ctx, func() (err error) { size, found, err = t.StatBlob(ctx, o.Digest); return }); err != nil {
		return bad("%v", err)
	}
	if !found {
		return bad("missing")
	}
	if o.Size >= 0 && size != o.Size {
		return bad("%d bytes, the plan says %d", size, o.Size)
	}
	if _, local := t.(*registry.Dir); !local {
		return nil
	}
	r, err := t.ReadBlob(ctx, o.Digest)
	if err != nil {
		return bad("%v", err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return bad("%v", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != o.Digest {
		return bad("its bytes hash to %s: the file was changed", got)
	}
	return nil
}

// checkManifest reads the manifest or index with digest and checks its
// bytes (and size, unless negative); it returns them.
func checkManifest(ctx context.Context, t registry.Target, digest string, size int64) ([]byte, error) {
	var body []byte
	err := withRetry(ctx, func() (err error) { _, body, err = t.Manifest(ctx, digest); return })
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return nil, errors.New("missing")
	case err != nil:
		return nil, err
	case oci.Digest(body) != digest:
		return nil, fmt.Errorf("its bytes hash to %s", oci.Digest(body))
	case size >= 0 && int64(len(body)) != size:
		return nil, fmt.Errorf("%d bytes, the plan says %d", len(body), size)
	}
	return body, nil
}

// checkTag checks that the tag names the planned index, which lists the
// planned manifests, all present.
func checkTag(ctx context.Context, t registry.Target, o plan.Object, manifests map[string]plan.Object) error {
	var now oci.Descriptor
	var found bool
	if err := withRetry(ctx, func() (err error) { now, found, err = t.Resolve(ctx, o.Key); return }); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("missing (planned index %s)", orUnknown(o.Digest))
	}
	body, err := checkManifest(ctx, t, now.Digest, -1)
	if err != nil {
		return fmt.Errorf("names index %s: %w", now.Digest, err)
	}
	var problems []string
	if o.Digest != "" && now.Digest != o.Digest {
		problems = append(problems, fmt.Sprintf("names index %s, not the planned %s", now.Digest, o.Digest))
	}
	var idx oci.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return fmt.Errorf("names %s, which is not an image index: %v", now.Digest, err)
	}
	listed := map[string]bool{}
	for _, m := range idx.Manifests {
		listed[m.Digest] = true
		what := m.Digest
		if m.Platform != nil {
			what = m.Platform.OS + "/" + m.Platform.Architecture + " " + m.Digest
		}
		if len(manifests) > 0 && manifests[m.Digest].Digest == "" {
			problems = append(problems, fmt.Sprintf("its index lists %s, which the plan does not", what))
			continue
		}
		var ok bool
		if err := withRetry(ctx, func() (err error) { _, ok, err = t.Resolve(ctx, m.Digest); return }); err != nil {
			return err
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("its index lists %s, which the destination lacks", what))
		}
	}
	var want []plan.Object
	for _, m := range manifests {
		want = append(want, m)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Digest < want[j].Digest })
	for _, m := range want {
		if !listed[m.Digest] {
			problems = append(problems, fmt.Sprintf("its index lacks the %s manifest %s", strings.TrimSuffix(m.Detail, " image"), m.Digest))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func orUnknown(d string) string {
	if d == "" {
		return "unknown until the layers are built"
	}
	return d
}
