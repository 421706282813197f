package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
)

// Published is one system's image as a destination already holds it
// (`releng promote` copies it by digest): its manifest and config as
// stored, its layers read from From — or mounted, on the same registry.
type Published struct {
	From     registry.Target
	Platform oci.Platform
	Manifest []byte
	Config   []byte
}

// PublishedIndex is an index a destination holds at a tag, with one
// Published source per platform.
type PublishedIndex struct {
	Index   oci.Descriptor
	Sources []Source
}

// ReadPublished reads the index that ref (a tag or a digest) names at
// src — a registry or an oci: layout — with each platform's manifest and
// config, checking every digest, so that Push can copy the images by
// digest (blobs mounted or copied, the same manifests and index).
func ReadPublished(ctx context.Context, src, ref string, opts PushOptions) (*PublishedIndex, error) {
	t, err := openTarget(ctx, src, opts, true)
	if err != nil {
		return nil, err
	}
	var desc oci.Descriptor
	var body []byte
	if err := withRetry(ctx, func() (err error) { desc, body, err = t.Manifest(ctx, ref); return }); err != nil {
		return nil, fmt.Errorf("%s:%s: %w", src, ref, err)
	}
	if oci.Digest(body) != desc.Digest {
		return nil, fmt.Errorf("%s:%s: the index read back has digest %s, the registry says %s", src, ref, oci.Digest(body), desc.Digest)
	}
	var idx oci.Index
	if err := json.Unmarshal(body, &idx); err != nil || desc.MediaType != oci.MediaTypeIndex {
		return nil, fmt.Errorf("%s:%s is not an OCI index (%s): releng pushes one index per tag", src, ref, desc.MediaType)
	}
	out := &PublishedIndex{Index: oci.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: int64(len(body))}}
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			return nil, fmt.Errorf("%s:%s: manifest %s has no platform", src, ref, m.Digest)
		}
		p, err := readPublishedImage(ctx, t, m)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", src, m.Digest, err)
		}
		p.Platform = *m.Platform
		out.Sources = append(out.Sources, Source{Published: p})
	}
	return out, nil
}

func readPublishedImage(ctx context.Context, t registry.Target, m oci.Descriptor) (*Published, error) {
	if err := registry.ValidDigest(m.Digest); err != nil {
		return nil, err
	}
	var mb []byte
	if err := withRetry(ctx, func() (err error) { _, mb, err = t.Manifest(ctx, m.Digest); return }); err != nil {
		return nil, err
	}
	if oci.Digest(mb) != m.Digest {
		return nil, fmt.Errorf("the manifest read back has digest %s", oci.Digest(mb))
	}
	var man oci.Manifest
	if err := json.Unmarshal(mb, &man); err != nil {
		return nil, fmt.Errorf("manifest: %v", err)
	}
	if err := registry.ValidDigest(man.Config.Digest); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var cb []byte
	err := withRetry(ctx, func() error {
		rc, err := t.ReadBlob(ctx, man.Config.Digest)
		if err != nil {
			return err
		}
		defer rc.Close()
		cb, err = fsutil.ReadAllLimited(rc, t.String()+"@"+man.Config.Digest, fsutil.MaxManifestJSON)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", man.Config.Digest, err)
	}
	if oci.Digest(cb) != man.Config.Digest {
		return nil, fmt.Errorf("config %s read back has digest %s", man.Config.Digest, oci.Digest(cb))
	}
	return &Published{From: t, Manifest: mb, Config: cb}, nil
}

// preparePublished makes a pImage of an image a destination holds: the
// manifest and config as they are, each layer read from the source when
// the target lacks it (or mounted from it on the same registry).
func preparePublished(p *Published) (*pImage, error) {
	var man oci.Manifest
	var cf oci.ConfigFile
	if err := json.Unmarshal(p.Manifest, &man); err != nil {
		return nil, fmt.Errorf("%s: manifest: %v", p.From, err)
	}
	if err := json.Unmarshal(p.Config, &cf); err != nil || len(cf.RootFS.DiffIDs) != len(man.Layers) {
		return nil, fmt.Errorf("%s: config %s does not match the manifest's %d layers", p.From, man.Config.Digest, len(man.Layers))
	}
	src := p.From.String()
	img := &pImage{system: systemOf(p.Platform), source: src, platform: p.Platform, labels: cf.Config.Labels, manifest: p.Manifest}
	cb := p.Config
	img.config = func([]layer.Digests) ([]byte, error) { return cb, nil }
	var mount []string
	if r, ok := p.From.(*registry.Remote); ok {
		mount = []string{r.Repository()}
	}
	for i, l := range man.Layers {
		if err := registry.ValidDigest(l.Digest); err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", src, i+1, err)
		}
		from, digest := p.From, l.Digest
		img.layers = append(img.layers, &pLayer{mediaType: l.MediaType, source: src + "@" + digest, mount: mount,
			known: &layer.Digests{Digest: l.Digest, Size: l.Size, DiffID: cf.RootFS.DiffIDs[i]},
			blob:  func(ctx context.Context) (io.ReadCloser, error) { return from.ReadBlob(ctx, digest) }})
	}
	return img, nil
}
