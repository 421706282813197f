package image

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/image/layer"
)

// LayersReport is what `releng image layers` prints.
type LayersReport struct {
	Name      string      `json:"name"`
	System    string      `json:"system"`
	MaxLayers int         `json:"max_layers"`
	Paths     int         `json:"paths"`
	NarSize   int64       `json:"nar_size"`
	Fallback  bool        `json:"packed_in_order,omitempty"`
	Layers    []LayerInfo `json:"layers"`
	// With Against: the destination, and what a push would send (layer
	// blobs; the config and manifests add a few kilobytes).
	Against    string `json:"against,omitempty"`
	SendLayers int    `json:"send_layers,omitempty"`
	SendBytes  int64  `json:"send_bytes,omitempty"`
}

// ReportOptions configure Layers.
type ReportOptions struct {
	Cache         *Cache
	RelengVersion string
	// Against is a destination (HOST[:PORT]/REPO or oci:DIR) to compare
	// with; layers the cache does not know are built (and discarded) to
	// learn their digests.
	Against string
	// Push has the connection settings used with Against.
	Push PushOptions
	Jobs int
}

// Layers plans in and reports its layers; with Against, which of them the
// destination has and how many bytes a push would send.
func Layers(ctx context.Context, in *Input, opts ReportOptions) (*LayersReport, error) {
	p, err := in.Plan(opts.RelengVersion)
	if err != nil {
		return nil, err
	}
	rep := &LayersReport{Name: in.Name, System: in.System, MaxLayers: in.MaxLayers, Paths: len(in.Closure), Fallback: p.Plan.Fallback}
	for _, pi := range in.Closure {
		rep.NarSize += int64(pi.NarSize)
	}
	for i, l := range p.Layers {
		info := LayerInfo{Index: i + 1, Kind: l.Kind, Paths: l.Paths, Size: l.Size, Why: l.Why}
		if d, ok := opts.Cache.Get(l.Key); ok {
			info.Digest, info.CompressedSize = d.Digest, d.Size
		}
		rep.Layers = append(rep.Layers, info)
	}
	if opts.Against == "" {
		return rep, nil
	}
	rep.Against = opts.Against
	// Learn the digests the cache lacks, in parallel.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(opts.Jobs))
	for i, l := range p.Layers {
		if rep.Layers[i].Digest != "" {
			continue
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			d, err := layer.Build(io.Discard, in.Compression, l.write)
			if err != nil {
				return err
			}
			opts.Cache.Put(l.Key, d)
			rep.Layers[i].Digest, rep.Layers[i].CompressedSize = d.Digest, d.Size
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	t, err := openTarget(ctx, opts.Against, opts.Push, true)
	if err != nil {
		return nil, err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range rep.Layers {
		g.Go(func() error {
			ok, err := t.HasBlob(gctx, rep.Layers[i].Digest)
			if err != nil {
				return err
			}
			rep.Layers[i].Registry = "missing"
			if ok {
				rep.Layers[i].Registry = "present"
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, l := range rep.Layers {
		if l.Registry == "missing" {
			rep.SendLayers++
			rep.SendBytes += l.CompressedSize
		}
	}
	return rep, nil
}
