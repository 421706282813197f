package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/archive"
	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/oci"
)

// BuildOptions configure Build.
type BuildOptions struct {
	// Dir receives NAME-SYSTEM/ (OCI layout) and NAME-SYSTEM.tar.gz
	// (docker-archive): release/images.
	Dir string
	// Cache remembers layer digests; nil disables it.
	Cache *Cache
	// RelengVersion is part of the layer cache keys.
	RelengVersion string
	// Jobs is how many layers are built at once (default GOMAXPROCS).
	Jobs int
	// Progress receives one line per step; nil is silent.
	Progress func(string)
	// Outputs, when set, is the ledger of the release directory that holds
	// Dir: every entry Build makes there is recorded first, and what it
	// replaces is deleted only if the ledger says releng wrote it (`releng
	// image build` into release/images). nil: Dir is the caller's own
	// staging directory.
	Outputs *fsutil.Ledger
}

// Result is a built image.
type Result struct {
	Name    string `json:"name"`
	System  string `json:"system"`
	Version string `json:"version"`
	// Layout is the OCI layout directory; Archive the docker-archive
	// ("" for zstd images, which docker-archives cannot hold portably).
	Layout   string         `json:"layout"`
	Archive  string         `json:"archive,omitempty"`
	Manifest oci.Descriptor `json:"manifest"`
	Config   oci.Descriptor `json:"config"`
	Layers   []BuiltLayer   `json:"layers"`
}

// BuiltLayer is a layer of a built image.
type BuiltLayer struct {
	oci.Descriptor
	DiffID string   `json:"diff_id"`
	Kind   string   `json:"kind"`
	Paths  []string `json:"paths,omitempty"`
	Why    string   `json:"why"`
}

func (o *BuildOptions) say(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

func jobs(n int) int {
	if n > 0 {
		return n
	}
	return max(runtime.GOMAXPROCS(0), 1)
}

// Build builds each input into Dir/NAME-SYSTEM/ (an OCI layout whose
// index.json holds the image manifest tagged with the version) and
// Dir/NAME-SYSTEM.tar.gz (a docker-archive tagged NAME:VERSION) from the
// same blobs. A layer whose digests the cache knows and whose blob the
// previous layout has is reused instead of rebuilt. Nothing is left half
// written: each output appears complete or not at all.
func Build(ctx context.Context, inputs []*Input, opts BuildOptions) ([]*Result, error) {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("images directory: %w", err)
	}
	var results []*Result
	for _, in := range inputs {
		p, err := in.Plan(opts.RelengVersion)
		if err != nil {
			return nil, err
		}
		r, err := buildOne(ctx, p, opts)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}

func buildOne(ctx context.Context, p *Planned, opts BuildOptions) (*Result, error) {
	in := p.In
	final := filepath.Join(opts.Dir, in.Base())
	staging, err := opts.makeStaging(final)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)
	blobs := filepath.Join(staging, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	opts.say("building image %s for %s: %d layers", in.Name, in.System, len(p.Layers))

	digests := make([]layer.Digests, len(p.Layers))
	order := make([]int, len(p.Layers))
	for i := range order {
		order[i] = i
	}
	// Biggest first, so the long ones start early.
	sort.SliceStable(order, func(a, b int) bool { return p.Layers[order[a]].Size > p.Layers[order[b]].Size })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(opts.Jobs))
	for _, i := range order {
		l := p.Layers[i]
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if d, ok := opts.Cache.Get(l.Key); ok {
				old := filepath.Join(final, "blobs", "sha256", oci.Hex(d.Digest))
				if st, err := os.Stat(old); err == nil && st.Size() == d.Size {
					if err := linkOrCopy(old, filepath.Join(blobs, oci.Hex(d.Digest))); err == nil {
						digests[i] = d
						return nil
					}
				}
			}
			d, err := writeLayerBlob(blobs, in.Compression, l)
			if err != nil {
				return fmt.Errorf("image %s (%s), layer %d: %w", in.Name, in.System, i+1, err)
			}
			opts.Cache.Put(l.Key, d)
			digests[i] = d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	res := &Result{Name: in.Name, System: in.System, Version: in.Version, Layout: final}
	var descs []oci.Descriptor
	for i, l := range p.Layers {
		d := oci.Descriptor{MediaType: in.Compression.MediaType(), Digest: digests[i].Digest, Size: digests[i].Size}
		descs = append(descs, d)
		res.Layers = append(res.Layers, BuiltLayer{Descriptor: d, DiffID: digests[i].DiffID, Kind: l.Kind, Paths: l.Paths, Why: l.Why})
	}
	cfg, err := p.ConfigBlob(digests)
	if err != nil {
		return nil, err
	}
	man, err := manifestBlob(cfg, descs)
	if err != nil {
		return nil, err
	}
	for _, b := range [][]byte{cfg, man} {
		if err := os.WriteFile(filepath.Join(blobs, oci.Hex(oci.Digest(b))), b, 0o644); err != nil {
			return nil, err
		}
	}
	res.Config = oci.Descriptor{MediaType: oci.MediaTypeConfig, Digest: oci.Digest(cfg), Size: int64(len(cfg))}
	res.Manifest = oci.Descriptor{MediaType: oci.MediaTypeManifest, Digest: oci.Digest(man), Size: int64(len(man))}
	platform := p.Platform
	idx := oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Manifests: []oci.Descriptor{{
		MediaType: oci.MediaTypeManifest, Digest: res.Manifest.Digest, Size: res.Manifest.Size,
		Annotations: map[string]string{oci.AnnotationRefName: in.Version}, Platform: &platform,
	}}}
	ib, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(staging, "index.json"), ib, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(staging, "oci-layout"), []byte(oci.LayoutFile), 0o644); err != nil {
		return nil, err
	}
	if err := os.Chmod(staging, 0o755); err != nil {
		return nil, err
	}
	if err := opts.replaceDir(staging, final); err != nil {
		return nil, err
	}

	if in.Compression == layer.Gzip {
		res.Archive = final + ".tar.gz"
		img := archive.Image{RepoTag: in.Name + ":" + in.Version, Tag: in.Version, Manifest: man, Config: fileBlob(final, res.Config.Digest, res.Config.Size)}
		for _, d := range descs {
			img.Layers = append(img.Layers, fileBlob(final, d.Digest, d.Size))
		}
		err := opts.writeOutput(res.Archive, func(w io.Writer) error { return archive.Write(w, img) })
		if err != nil {
			return nil, fmt.Errorf("docker-archive %s: %w", res.Archive, err)
		}
	} else {
		if err := opts.remove(final + ".tar.gz"); err != nil {
			return nil, err
		}
		opts.say("image %s (%s): compression %s: no docker-archive (docker load needs gzip layers)", in.Name, in.System, in.Compression)
	}
	opts.say("image %s for %s: %s", in.Name, in.System, res.Manifest.Digest)
	return res, nil
}

// writeLayerBlob builds a layer into a temporary file in dir and renames it
// to its digest.
func writeLayerBlob(dir string, c layer.Compression, l *LayerSpec) (layer.Digests, error) {
	f, err := os.CreateTemp(dir, ".layer-")
	if err != nil {
		return layer.Digests{}, err
	}
	defer os.Remove(f.Name())
	d, err := layer.Build(f, c, l.write)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return layer.Digests{}, err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return layer.Digests{}, err
	}
	return d, os.Rename(f.Name(), filepath.Join(dir, oci.Hex(d.Digest)))
}

func fileBlob(layout, digest string, size int64) archive.Blob {
	return archive.Blob{Digest: digest, Size: size, Open: func() (io.ReadCloser, error) {
		return os.Open(filepath.Join(layout, "blobs", "sha256", oci.Hex(digest)))
	}}
}

// writeRenamed writes path through a temporary file renamed into place, as
// fsutil.WriteAtomic does but without fsync: a build output is checked
// against build.json before it is published, and syncing hundreds of
// megabytes costs more than rebuilding them after a crash.
func writeRenamed(path string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// linkOrCopy hard-links src to dst, copying when links are not possible.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return fsutil.WriteAtomic(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// makeStaging makes the directory final is built in.
func (o *BuildOptions) makeStaging(final string) (string, error) {
	if o.Outputs == nil {
		return os.MkdirTemp(o.Dir, "."+filepath.Base(final)+".tmp-")
	}
	staging := filepath.Join(o.Dir, "."+filepath.Base(final)+".tmp")
	if err := o.Outputs.Remove(staging); err != nil {
		return "", err
	}
	if err := o.Outputs.Record(map[string]fsutil.Kind{staging: fsutil.KindTemp}); err != nil {
		return "", err
	}
	return staging, os.Mkdir(staging, 0o755)
}

// replaceDir puts the complete directory staging at final, replacing what
// was there (with a ledger: only if releng wrote it).
func (o *BuildOptions) replaceDir(staging, final string) error {
	if o.Outputs == nil {
		return replaceDir(staging, final)
	}
	if err := o.Outputs.Remove(final); err != nil {
		return err
	}
	if err := o.Outputs.RecordTree(staging, final); err != nil {
		return err
	}
	return os.Rename(staging, final)
}

// writeOutput writes the file path through a temporary file renamed into
// place (with a ledger: both recorded first, and an existing path replaced
// only if releng wrote it).
func (o *BuildOptions) writeOutput(path string, fill func(io.Writer) error) error {
	if o.Outputs == nil {
		return writeRenamed(path, fill)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	for _, p := range []string{tmp, path} {
		if err := o.Outputs.Remove(p); err != nil {
			return err
		}
	}
	if err := o.Outputs.Record(map[string]fsutil.Kind{tmp: fsutil.KindFile, path: fsutil.KindFile}); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// remove deletes an output (with a ledger: only if releng wrote it).
func (o *BuildOptions) remove(path string) error {
	if o.Outputs == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	return o.Outputs.Remove(path)
}

// replaceDir puts the complete directory staging at final, replacing what
// was there.
func replaceDir(staging, final string) error {
	old := final + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(final, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(staging, final); err != nil {
		_ = os.Rename(old, final)
		return err
	}
	return os.RemoveAll(old)
}
