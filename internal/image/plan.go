package image

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/layering"
	"github.com/releng-project/releng/internal/image/nixdb"
	"github.com/releng-project/releng/internal/image/oci"
)

// LayerSpec is one layer of a planned image.
type LayerSpec struct {
	// Kind is a layering.Kind for store layers, or "top".
	Kind  string   `json:"kind"`
	Paths []string `json:"paths,omitempty"`
	// Size is the sum of the NAR sizes of Paths (the top layer: its root
	// tree's and database's).
	Size int64  `json:"size"`
	Why  string `json:"why"`
	// Key is the layer's cache key.
	Key   string                `json:"-"`
	write func(io.Writer) error `json:"-"`
}

// KindTop is the kind of the top layer.
const KindTop = "top"

// Planned is an Input with its layers decided.
type Planned struct {
	In       *Input
	Plan     *layering.Plan
	Layers   []*LayerSpec // store layers, then the top layer
	Platform oci.Platform
}

// Plan decides the image's layers (SPEC §8.2). relengVersion is part of
// every layer's cache key.
func (in *Input) Plan(relengVersion string) (*Planned, error) {
	if err := in.validateSettings(); err != nil {
		return nil, err
	}
	if len(in.Closure) == 0 {
		return nil, fmt.Errorf("image %s (%s): empty closure: nothing to put in the image", in.Name, in.System)
	}
	nodes := make([]layering.Node, len(in.Closure))
	infos := map[string]int{}
	for i, pi := range in.Closure {
		p := pi.Path.String()
		if pi.Path.Dir != layer.StoreDir {
			return nil, fmt.Errorf("image %s: %s is not in %s; images hold /nix/store paths (read from another directory with StoreDir)", in.Name, p, layer.StoreDir)
		}
		nodes[i] = layering.Node{Path: p, Size: int64(pi.NarSize)}
		for _, r := range pi.References {
			nodes[i].References = append(nodes[i].References, r.String())
		}
		infos[p] = i
	}
	g, err := layering.NewGraph(nodes)
	if err != nil {
		return nil, fmt.Errorf("image %s (%s): %w", in.Name, in.System, err)
	}
	roots := append([]string(nil), in.Contents...)
	if in.Root != "" {
		roots = append(roots, in.Root)
	}
	plan, err := layering.Make(g, roots, in.Groups, layering.Options{MaxLayers: in.MaxLayers, MaxLayerSize: in.MaxLayerSize})
	if err != nil {
		return nil, fmt.Errorf("image %s (%s): %w", in.Name, in.System, err)
	}
	platform, _ := oci.PlatformOf(in.System)
	p := &Planned{In: in, Plan: plan, Platform: platform}
	storeDir := in.storeDir()
	comp := string(in.Compression)
	for _, l := range plan.Layers {
		paths := l.Paths
		p.Layers = append(p.Layers, &LayerSpec{
			Kind: string(l.Kind), Paths: paths, Size: l.Size, Why: l.Why,
			Key:   layerKey(relengVersion, append([]string{"store", comp}, paths...)...),
			write: func(w io.Writer) error { return layer.WriteStorePaths(w, storeDir, paths) },
		})
	}

	// The top layer: root tree, tmp dirs, Nix database.
	top := layer.Top{TmpDirs: in.TmpDirs}
	why := []string{}
	keyParts := []string{"top", comp, "tmp:" + strings.Join(in.TmpDirs, ":")}
	var size int64
	if in.Root != "" {
		top.RootTree = path.Join(storeDir, path.Base(in.Root))
		why = append(why, "root tree of "+in.Root)
		keyParts = append(keyParts, "root:"+in.Root)
		size += int64(in.Closure[infos[in.Root]].NarSize)
	}
	if len(in.TmpDirs) > 0 {
		why = append(why, "tmp_dirs "+strings.Join(in.TmpDirs, " ")+" (mode 1777)")
	}
	if in.NixDB {
		db, err := in.nixDB()
		if err != nil {
			return nil, err
		}
		top.Files = []layer.File{
			{Name: nixdb.DBFile, Mode: 0o644, Data: db},
			{Name: nixdb.SchemaFile, Mode: 0o644, Data: []byte(nixdb.SchemaVersion)},
		}
		why = append(why, fmt.Sprintf("Nix database registering the %d store paths", len(in.Closure)))
		keyParts = append(keyParts, "nixdb:"+oci.Digest(db))
		size += int64(len(db))
	}
	if len(why) == 0 {
		why = append(why, "empty: no root, tmp_dirs or Nix database")
	}
	p.Layers = append(p.Layers, &LayerSpec{
		Kind: KindTop, Size: size, Why: strings.Join(why, "; "),
		Key:   layerKey(relengVersion, keyParts...),
		write: func(w io.Writer) error { return layer.WriteTop(w, top) },
	})
	return p, nil
}

// nixDB returns the database registering the closure.
func (in *Input) nixDB() ([]byte, error) {
	paths := make([]nixdb.Path, len(in.Closure))
	for i, pi := range in.Closure {
		p := nixdb.Path{Path: pi.Path.String(), NarHash: pi.NarHash, NarSize: pi.NarSize, CA: pi.CA}
		if !pi.Deriver.IsZero() {
			p.Deriver = pi.Deriver.String()
		}
		for _, r := range pi.References {
			p.References = append(p.References, r.String())
		}
		paths[i] = p
	}
	db, err := nixdb.Write(paths, in.Created.Unix())
	if err != nil {
		return nil, fmt.Errorf("image %s (%s): %w", in.Name, in.System, err)
	}
	return db, nil
}

// ConfigBlob is the image config for layers with these digests.
func (p *Planned) ConfigBlob(digests []layer.Digests) ([]byte, error) {
	if len(digests) != len(p.Layers) {
		return nil, fmt.Errorf("image %s: %d layer digests for %d layers", p.In.Name, len(digests), len(p.Layers))
	}
	created := p.In.Created.UTC().Format(time.RFC3339)
	cf := oci.ConfigFile{
		Created: created, Architecture: p.Platform.Architecture, Variant: p.Platform.Variant, OS: p.Platform.OS,
		Config: p.In.Config, RootFS: oci.RootFS{Type: "layers"},
	}
	for i, l := range p.Layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, digests[i].DiffID)
		by := "releng: " + l.Why
		if l.Kind != KindTop {
			by = "releng: store paths " + strings.Join(l.Paths, " ")
		}
		cf.History = append(cf.History, oci.History{Created: created, CreatedBy: by, Comment: l.Why})
	}
	return json.Marshal(cf)
}

// manifestBlob is the image manifest of a config and layers.
func manifestBlob(config []byte, layers []oci.Descriptor) ([]byte, error) {
	m := oci.Manifest{
		SchemaVersion: 2, MediaType: oci.MediaTypeManifest,
		Config: oci.Descriptor{MediaType: oci.MediaTypeConfig, Digest: oci.Digest(config), Size: int64(len(config))},
		Layers: layers,
	}
	return json.Marshal(m)
}

// LayerInfo describes a layer for reports.
type LayerInfo struct {
	Index int      `json:"index"`
	Kind  string   `json:"kind"`
	Paths []string `json:"paths,omitempty"`
	Size  int64    `json:"nar_size"`
	Why   string   `json:"why"`
	// Digest and CompressedSize are known once the layer was built on
	// this machine (the cache) or computed for --against.
	Digest         string `json:"digest,omitempty"`
	CompressedSize int64  `json:"compressed_size,omitempty"`
	// Registry is "present" or "missing" with --against.
	Registry string `json:"registry,omitempty"`
}
